//! Group commit for SQLite. Every commit waits for its own fsync (WAL, `synchronous=FULL`),
//! so one transaction per write caps writes at the disk's fsync rate. Here one task owns the
//! write turn: it runs the writes that queue while a commit is in flight, each in a savepoint
//! of one shared transaction, and commits them with one fsync. A write whose work fails rolls
//! back to its savepoint and gets its own error; the others go on. No write is answered before
//! the commit that holds it is durable, and if that commit fails every write in it gets the
//! failure.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::conn::{Conn, Reader, TxOn};
use crate::db::Pool;
use crate::error::{Error, Result};

/// A future borrowing the connection it writes on.
pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Writes one transaction holds at most, so that the first of a long queue is not held back
/// by the work of all the others.
pub const MAX_GROUP: usize = 64;

/// Writes waiting for the committer; beyond it a writer waits to queue.
const QUEUE: usize = 256;

/// Write transactions committed and the writes they held, process-wide (for the metrics).
static COMMITS: AtomicU64 = AtomicU64::new(0);
static COMMITTED_WRITES: AtomicU64 = AtomicU64::new(0);

/// Write transactions committed since start, and the writes in them: on SQLite several writes
/// share a commit, elsewhere each write is one.
pub fn commit_totals() -> (u64, u64) {
    (COMMITS.load(Ordering::Relaxed), COMMITTED_WRITES.load(Ordering::Relaxed))
}

pub(crate) fn count_commit(writes: usize) {
    COMMITS.fetch_add(1, Ordering::Relaxed);
    COMMITTED_WRITES.fetch_add(writes as u64, Ordering::Relaxed);
}

/// Answers a write once its group's fate is known: `None` when the group committed.
type Answer = Box<dyn FnOnce(Option<&Error>) + Send>;

/// A queued write: runs on the shared transaction, says whether its work succeeded, and how to
/// answer it. Given the error instead of a connection when its group could not start (or its
/// savepoint not open), it does no work and its answer is that error.
type Job = Box<dyn for<'c, 'd> FnOnce(Result<&'c mut Conn<'d>, &'c Error>) -> WriteFuture<'c, (bool, Answer)> + Send>;

/// The handle writers queue on; the committer stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the committer on `pool` (an SQLite pool).
    pub fn start(pool: Pool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(commit_loop(pool, queue));
        GroupCommit { jobs }
    }

    /// Runs `work` in the next group and answers once that group is durable.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c, 'd> FnOnce(&'c mut Conn<'d>) -> WriteFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let outcome = match conn {
                    Ok(conn) => work(conn).await,
                    Err(refused) => Err(E::from(refused.same_kind())),
                };
                let succeeded = outcome.is_ok();
                let answer: Answer = Box::new(move |failure: Option<&Error>| {
                    let outcome = match (outcome, failure) {
                        (Ok(_), Some(failure)) => Err(E::from(failure.same_kind())),
                        (outcome, _) => outcome,
                    };
                    // A writer that went away still had its write committed.
                    let _ = answer.send(outcome);
                });
                (succeeded, answer)
            })
        });
        // Built only when the committer is gone: converting an error may log it.
        let stopped = || E::from(Error::Unavailable(sqlx::Error::PoolClosed));
        self.jobs.send(job).await.map_err(|_| stopped())?;
        // Dropped unanswered only by a write that panicked.
        answered.await.map_err(|_| E::from(Error::Db(sqlx::Error::Protocol("the write was abandoned".into()))))?
    }
}

/// The committer's page cache. Under 16 clients of the bench's M5 log-batch a group changes
/// about 600 pages of 4 KiB: the pool's 1 MiB spilled them to the WAL before the commit and
/// read them back (18 % of SQLite's thread in `pread`).
const WRITER_PAGE_CACHE_KIB: u32 = 8192;

/// Takes the first waiting write, then every write that arrives until the queue is empty (or
/// the group full), commits, answers them all; again. Every group runs on the same connection,
/// so its page cache stays valid from one group to the next (a connection that another one
/// wrote behind starts its next transaction with an empty cache).
async fn commit_loop(pool: Pool, mut queue: mpsc::Receiver<Job>) {
    let mut writer = None;
    while let Some(first) = queue.recv().await {
        let mut answers = Vec::new();
        let mut succeeded = 0;
        let failure = match begin(&pool, &mut writer).await {
            Err(e) => {
                answers.push(first(Err(&e)).await.1);
                Some(e)
            }
            Ok(mut tx) => {
                let mut job = Some(first);
                let mut broken = None;
                while let Some(work) = job.take() {
                    match run_in_savepoint(&mut tx.conn(), work, answers.is_empty()).await {
                        Ok((answer, ok)) => {
                            answers.push(answer);
                            succeeded += usize::from(ok);
                        }
                        Err((e, answer)) => {
                            answers.extend(answer);
                            broken = Some(e);
                            break;
                        }
                    }
                    if answers.len() < MAX_GROUP {
                        job = queue.try_recv().ok();
                    }
                }
                match broken {
                    Some(e) => Some(e),
                    None => tx.commit().await.err().map(Error::from),
                }
            }
        };
        // A failed commit may have rolled SQLite back on its own while the driver still counts
        // a transaction open: every later BEGIN on that connection would fail.
        if failure.is_some() && writer.as_ref().is_some_and(Reader::in_transaction) {
            writer = None;
        }
        match &failure {
            Some(e) => tracing::error!(error = %e, writes = answers.len().max(1), "a group of writes failed to commit"),
            None => count_commit(succeeded),
        }
        for answer in answers {
            answer(failure.as_ref());
        }
    }
}

/// A transaction on the committer's connection, taken from the pool the first time (and after
/// it broke).
async fn begin<'w>(pool: &Pool, writer: &'w mut Option<Reader>) -> Result<TxOn<'w>> {
    let conn = match writer.take() {
        Some(conn) => conn,
        None => {
            let mut conn = pool.reader().await?;
            conn.conn().execute_script(&format!("PRAGMA cache_size = -{WRITER_PAGE_CACHE_KIB}")).await?;
            conn
        }
    };
    Ok(writer.insert(conn).begin(pool.begin_statement()).await?)
}

/// One write in a savepoint of its own, rolled back to it when its work fails. The previous
/// write's savepoint is released by the same statement that opens this one (the commit
/// releases the last), one hand-off to SQLite's thread fewer per write. An error here (the
/// savepoint statements themselves, or a panic) leaves the shared transaction in doubt: the
/// whole group fails.
async fn run_in_savepoint(conn: &mut Conn<'_>, job: Job, first: bool) -> Result<(Answer, bool), (Error, Option<Answer>)> {
    let open = if first { "SAVEPOINT write" } else { "RELEASE write; SAVEPOINT write" };
    if let Err(e) = conn.execute(open, &[]).await {
        let e = Error::from(e);
        let (_, answer) = job(Err(&e)).await;
        return Err((e, Some(answer)));
    }
    let Ok((succeeded, answer)) = futures_util::FutureExt::catch_unwind(AssertUnwindSafe(job(Ok(conn)))).await else {
        return Err((Error::Db(sqlx::Error::Protocol("a write panicked".into())), None));
    };
    if !succeeded {
        if let Err(e) = conn.execute("ROLLBACK TO write", &[]).await {
            return Err((e.into(), Some(answer)));
        }
    }
    Ok((answer, succeeded))
}
