//! Enqueueing: insert the job row (the truth), then push its id to Redis (the delivery). If the push fails the
//! row stays queued and a worker's reconciler pushes it later, so enqueueing never loses work. A push first
//! takes the row's `pushed_at` in Postgres ([`store::take_for_push`]), so a job is in Redis at most once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use apalis::prelude::TaskSink;
use apalis_redis::{Config, RedisStorage};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use super::store::{self, NewJob};
use crate::settings::{JobSettings, Settings};

/// What travels through Redis: only the id; everything else is read from Postgres.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}

/// Redis pushes give up after this long (the reconciler retries later).
const PUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Enqueues jobs. Cheap to clone; the Redis connection is opened on first push and re-opened after errors.
#[derive(Clone)]
pub struct JobQueue {
    db: PgPool,
    redis_url: SecretString,
    namespace: String,
    jobs: JobSettings,
    producers: Arc<Mutex<HashMap<String, Producer>>>,
    /// Wakes this process's reconciler early (a retry was scheduled, a worker reconnected).
    wake: Arc<Notify>,
}

impl JobQueue {
    pub fn new(db: PgPool, settings: &Settings) -> Self {
        Self {
            db,
            redis_url: settings.redis_url.clone(),
            namespace: settings.redis_namespace.clone(),
            jobs: settings.jobs.clone(),
            producers: Arc::default(),
            wake: Arc::default(),
        }
    }

    /// The apalis configuration of `queue`, with heartbeat and orphan timeouts set explicitly.
    pub fn apalis_config(&self, queue: &str) -> Config {
        apalis_config(&self.namespace, queue, &self.jobs, self.jobs.concurrency)
    }

    /// The apalis configuration of a worker of `queue` running `concurrency` jobs at a time.
    pub fn apalis_config_for(&self, queue: &str, concurrency: usize) -> Config {
        apalis_config(&self.namespace, queue, &self.jobs, concurrency)
    }

    /// A job description with the attempt budget of its kind (`JOB_RETRY_<CLASS>`).
    pub fn new_job(&self, queue: &str, kind: &str, payload: serde_json::Value) -> NewJob {
        NewJob {
            queue: queue.to_owned(),
            kind: kind.to_owned(),
            payload,
            request_id: None,
            dedupe_key: None,
            max_attempts: self.jobs.retry.for_kind(kind).max_attempts,
        }
    }

    /// The Redis pub/sub channel that wakes the workers of `queue` when a job is pushed to it.
    pub fn wake_channel(&self, queue: &str) -> String {
        format!("{}:jobs:{queue}:wake", self.namespace)
    }

    /// Wakes this process's reconciler for an immediate pass.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn woken(&self) -> &Notify {
        &self.wake
    }

    /// Inserts the row inside the caller's transaction; call [`JobQueue::push`] after committing.
    /// Returns `None` when an unfinished job with the same dedupe key exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert(
        &self,
        conn: &mut PgConnection,
        new: &NewJob,
    ) -> sqlx::Result<Option<Uuid>> {
        store::insert(conn, Uuid::new_v4(), new).await
    }

    /// Inserts and pushes in one call. Returns `None` when deduplicated.
    ///
    /// # Errors
    /// Database errors (a Redis failure is logged, not returned: the reconciler delivers the job later).
    pub async fn enqueue(&self, new: &NewJob) -> sqlx::Result<Option<Uuid>> {
        let mut conn = self.db.acquire().await?;
        let id = self.insert(&mut conn, new).await?;
        drop(conn);
        if let Some(id) = id {
            metrics::counter!("jobs_enqueued_total", "queue" => new.queue.clone(), "kind" => new.kind.clone())
                .increment(1);
            self.push(&new.queue, id).await;
        }
        Ok(id)
    }

    /// Delivers a job id to Redis if it is due and not there yet (see [`store::take_for_push`]); a job that is
    /// not due (a retry waiting for its back-off) is pushed by the reconciler when it is. Returns whether this
    /// call pushed it. Failures are logged; the row remains the source of truth. The job goes to the queue
    /// stored on its row.
    pub async fn push(&self, queue: &str, job_id: Uuid) -> bool {
        match store::take_for_push(&self.db, job_id).await {
            // The row's queue is the truth (`queue` only names the caller's expectation for the logs).
            Ok(Some(q)) => self.deliver(&q, &[job_id]).await == 1,
            Ok(None) => {
                tracing::debug!(%job_id, queue, "not pushed: not due, already in Redis, or finished");
                false
            }
            Err(e) => {
                tracing::warn!(%job_id, queue, error = %e, "could not mark job pushed; the reconciler will push it");
                false
            }
        }
    }

    /// Pushes ids already taken with [`store::take_for_push`]/[`store::take_due`] to `queue`. Stops at the
    /// first failure and hands the rest back ([`store::untake`]) for the next pass. Returns how many were pushed.
    pub(crate) async fn deliver(&self, queue: &str, job_ids: &[Uuid]) -> usize {
        for (i, &job_id) in job_ids.iter().enumerate() {
            let error = match tokio::time::timeout(PUSH_TIMEOUT, self.try_push(queue, job_id)).await
            {
                Ok(Ok(())) => {
                    metrics::counter!("jobs_pushed_total", "queue" => queue.to_owned())
                        .increment(1);
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            tracing::warn!(%job_id, queue, error, "could not push job to Redis; it will be pushed again");
            self.producers.lock().await.remove(queue);
            if let Err(e) = store::untake(&self.db, &job_ids[i..]).await {
                tracing::warn!(queue, error = %e, "could not hand jobs back; the reconciler re-pushes them when stale");
            }
            return i;
        }
        job_ids.len()
    }

    async fn try_push(&self, queue: &str, job_id: Uuid) -> anyhow::Result<()> {
        let mut producers = self.producers.lock().await;
        if !producers.contains_key(queue) {
            let conn = connect(self.redis_url.expose_secret()).await?;
            producers.insert(
                queue.to_owned(),
                Producer {
                    wake: conn.clone(),
                    storage: RedisStorage::new(conn).with_config(self.apalis_config(queue)),
                },
            );
        }
        let producer = producers
            .get_mut(queue)
            .ok_or_else(|| anyhow::anyhow!("producer missing"))?;
        // Every delivery is a fresh apalis task (apalis generates its id): re-pushing a task id that apalis has
        // already seen is silently not delivered again, and re-delivery is exactly what re-drives and the
        // reconciler need. Duplicate deliveries are harmless: only one claim of the row succeeds.
        producer
            .storage
            .push(JobMessage { job_id })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Wake the queue's workers now rather than at their next poll. Best effort: a lost wake-up costs at most
        // one poll interval.
        let woken: Result<i64, _> = deadpool_redis::redis::cmd("PUBLISH")
            .arg(self.wake_channel(queue))
            .arg("")
            .query_async(&mut producer.wake)
            .await;
        if let Err(e) = woken {
            tracing::debug!(queue, error = %e, "could not publish the wake-up; workers poll");
        }
        Ok(())
    }
}

/// What pushes to one queue: apalis' storage and a connection for the wake-up message.
struct Producer {
    storage: RedisStorage<JobMessage>,
    wake: apalis_redis::ConnectionManager,
}

/// Opens the Redis connection apalis uses. The redis crate's default response timeout (500 ms) made
/// workers drop and restart whenever the machine was busy; 5 s still bounds a hung Redis, and a dead one
/// fails the connect after 3 s.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn connect(
    url: &str,
) -> Result<apalis_redis::ConnectionManager, apalis_redis::RedisError> {
    let client = apalis_redis::Client::open(url)?;
    let config = deadpool_redis::redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_connection_timeout(Some(Duration::from_secs(3)));
    client.get_connection_manager_with_config(config).await
}

/// The apalis configuration of `queue` under `namespace`.
pub fn apalis_config(
    namespace: &str,
    queue: &str,
    jobs: &JobSettings,
    concurrency: usize,
) -> Config {
    Config::default()
        .queue(format!("{namespace}:jobs:{queue}"))
        .heartbeat_interval(jobs.heartbeat)
        .missed_heartbeats(jobs.missed_heartbeats as usize)
        .batch_size(concurrency.max(1))
        .lock_tasks(true)
        // Must stay true: it is what acknowledges a finished task.
        .persist_results(true)
        .emit_events(false)
}
