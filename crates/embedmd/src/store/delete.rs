//! Deletes: nodes with their properties and every link and event that names them, so that
//! nothing is left pointing at a removed row. MLMD itself never deletes; MLflow's API does.
//! Each statement takes a chunk of ids, so a delete costs a fixed number of statements per
//! [`DELETE_CHUNK`] nodes, all in the caller's transaction.

use sqlx::FromRow;

use super::{Arg, Conn, NodeKind, Store};
use crate::dialect::Table;
use crate::error::Result;

/// Ids bound per statement.
const DELETE_CHUNK: usize = 1000;

impl Store {
    /// `column IN (...)` over the chunk, its placeholders numbered from `first`.
    fn in_list(&self, column: &str, ids: &[i64], first: usize) -> String {
        format!("{column} IN ({})", self.dialect.placeholders(first, ids.len()))
    }

    /// The artifacts attributed to `contexts` and to no other context: what deleting those
    /// contexts would leave without an owner. One query per chunk.
    pub async fn owned_artifacts(&self, conn: &mut Conn<'_>, contexts: &[i64]) -> Result<Vec<i64>> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
        }
        let d = self.dialect;
        let attribution = d.table(Table::Attribution);
        let mut out = Vec::new();
        for chunk in contexts.chunks(DELETE_CHUNK / 2) {
            let n = chunk.len();
            let sql = format!(
                "SELECT DISTINCT {id} AS id FROM {attribution} a WHERE {owned} AND NOT EXISTS \
                 (SELECT 1 FROM {attribution} b WHERE b.artifact_id = a.artifact_id AND NOT {others})",
                id = d.as_i64("a.artifact_id"),
                owned = self.in_list("a.context_id", chunk, 1),
                others = self.in_list("b.context_id", chunk, n + 1),
            );
            let args: Vec<Arg> = chunk.iter().chain(chunk).map(|id| Arg::from(*id)).collect();
            out.extend(conn.fetch_all::<Row>(&sql, &args).await?.into_iter().map(|r| r.id));
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Deletes artifacts, their properties, attributions, events and event paths.
    pub async fn delete_artifacts(&self, conn: &mut Conn<'_>, ids: &[i64]) -> Result<()> {
        let d = self.dialect;
        for chunk in ids.chunks(DELETE_CHUNK) {
            let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
            let events =
                format!("SELECT e.id FROM {} e WHERE {}", d.table(Table::Event), self.in_list("e.artifact_id", chunk, 1));
            let statements = [
                format!("DELETE FROM {} WHERE event_id IN ({events})", d.table(Table::EventPath)),
                format!("DELETE FROM {} WHERE {}", d.table(Table::Event), self.in_list("artifact_id", chunk, 1)),
                format!("DELETE FROM {} WHERE {}", d.table(Table::Attribution), self.in_list("artifact_id", chunk, 1)),
                format!("DELETE FROM {} WHERE {}", d.table(Table::ArtifactProperty), self.in_list("artifact_id", chunk, 1)),
                format!("DELETE FROM {} WHERE {}", d.table(Table::Artifact), self.in_list("id", chunk, 1)),
            ];
            for sql in statements {
                conn.execute(&sql, &args).await?;
            }
        }
        Ok(())
    }

    /// Deletes contexts, their properties and every attribution, association and parent link
    /// that names them (as child or as parent).
    pub async fn delete_contexts(&self, conn: &mut Conn<'_>, ids: &[i64]) -> Result<()> {
        let d = self.dialect;
        for chunk in ids.chunks(DELETE_CHUNK / 2) {
            let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
            let twice: Vec<Arg> = chunk.iter().chain(chunk).map(|id| Arg::from(*id)).collect();
            let parents = format!(
                "DELETE FROM {} WHERE {} OR {}",
                d.table(Table::ParentContext),
                self.in_list("context_id", chunk, 1),
                self.in_list("parent_context_id", chunk, chunk.len() + 1)
            );
            conn.execute(&parents, &twice).await?;
            let statements = [
                format!("DELETE FROM {} WHERE {}", d.table(Table::Attribution), self.in_list("context_id", chunk, 1)),
                format!("DELETE FROM {} WHERE {}", d.table(Table::Association), self.in_list("context_id", chunk, 1)),
                format!("DELETE FROM {} WHERE {}", d.table(Table::ContextProperty), self.in_list("context_id", chunk, 1)),
                format!("DELETE FROM {} WHERE {}", d.table(Table::Context), self.in_list("id", chunk, 1)),
            ];
            for sql in statements {
                conn.execute(&sql, &args).await?;
            }
        }
        Ok(())
    }

    /// Changes a node's stored name (a rename; the unique key on type and name still holds).
    pub async fn rename(&self, conn: &mut Conn<'_>, kind: NodeKind, id: i64, name: &str, now: i64) -> Result<()> {
        let d = self.dialect;
        let sql = format!(
            "UPDATE {} SET name = {}, last_update_time_since_epoch = {} WHERE id = {}",
            d.table(kind.table()),
            d.placeholder(1),
            d.placeholder(2),
            d.placeholder(3)
        );
        conn.execute(&sql, &[Arg::from(name), Arg::from(now), Arg::from(id)]).await?;
        Ok(())
    }
}
