//! An inference service's registered model and model version.

use embedmd::store::{ListQuery, OrderColumn, Parent};
use serde_json::Value as Json;

use super::{int_property, Registry};
use crate::registry::codec::{self, parse_id};
use crate::registry::error::{Error, Result};
use crate::registry::spec::EntityKind;

impl Registry {
    /// `GET /inference_services/{id}/model`.
    pub async fn inference_service_model(&self, id: &str) -> Result<Json> {
        let id = parse_id(id, "inference service ID")?;
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let (_, service) = self.load(&mut conn, &[EntityKind::InferenceService], id, "inference service").await?;
        let model_id = int_property(&service, "registered_model_id")
            .ok_or_else(|| Error::not_found(format!("inference service {id} has no registered model")))?;
        let (_, model) = self.load(&mut conn, &[EntityKind::RegisteredModel], model_id, "registered model").await?;
        Ok(codec::encode(self.api, EntityKind::RegisteredModel.spec(), &model))
    }

    /// `GET /inference_services/{id}/version`: its version, else the model's newest one.
    pub async fn inference_service_version(&self, id: &str) -> Result<Json> {
        let id = parse_id(id, "inference service ID")?;
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let (_, service) = self.load(&mut conn, &[EntityKind::InferenceService], id, "inference service").await?;
        let version = match int_property(&service, "model_version_id") {
            Some(version_id) => self.load(&mut conn, &[EntityKind::ModelVersion], version_id, "model version").await?.1,
            None => {
                let model_id = int_property(&service, "registered_model_id")
                    .ok_or_else(|| Error::not_found(format!("inference service {id} has no registered model")))?;
                let query = ListQuery {
                    parent: Some(Parent::Context(model_id)),
                    order: OrderColumn::CreateTime,
                    descending: true,
                    limit: Some(1),
                    ..ListQuery::of(vec![self.type_id(EntityKind::ModelVersion)])
                };
                let mut latest = self.store.list(&mut conn, EntityKind::ModelVersion.spec().node, &query).await?;
                self.fill_parent_ids(&mut conn, &mut latest).await?;
                latest.pop().ok_or_else(|| Error::not_found(format!("no model version found for registered model {model_id}")))?
            }
        };
        Ok(codec::encode(self.api, EntityKind::ModelVersion.spec(), &version))
    }
}
