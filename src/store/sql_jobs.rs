//! The durable job queue ([`crate::store::JobQueue`]) in SQL, shared by
//! Postgres and SQLite through the dialect of [`super::sql`].
//!
//! Claiming is one UPDATE over a sub-select of due, unleased jobs: on
//! Postgres the sub-select takes `FOR UPDATE SKIP LOCKED`, so instances
//! claiming at once get disjoint jobs without waiting on each other; SQLite
//! has a single writer, which makes the statement atomic by itself.

macro_rules! impl_sql_jobs {
    ($store:ty, $d:ident) => {
        use $crate::store::JobQueue;
        use $crate::store::model::{Job, NewJob};

        fn millis(t: DateTime<Utc>) -> i64 {
            t.timestamp_millis()
        }

        #[async_trait]
        impl JobQueue for $store {
            async fn enqueue_jobs(&self, jobs: &[NewJob]) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(StoreError::query("begin enqueueing jobs"))?;
                for j in jobs {
                    sqlx::query(Sql(format!(
                        "INSERT INTO phs_plugin_job (team_id, plugin_config_id, name, payload, attempt, run_at_ms) \
                         VALUES ($1, $2, $3, $4{j}, $5, $6)",
                        j = $d::JSONB
                    )))
                    .bind(j.team_id)
                    .bind(j.plugin_config_id)
                    .bind(&j.name)
                    .bind(j.payload.to_string())
                    .bind(j.attempt)
                    .bind(millis(j.run_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("enqueue a job"))?;
                }
                tx.commit().await.map_err(StoreError::query("commit enqueued jobs"))
            }

            async fn claim_jobs(&self, now: DateTime<Utc>, lease: std::time::Duration, limit: i64) -> Result<Vec<Job>> {
                let rows: Vec<(i64, i64, i64, String, String, i32, i64)> = sqlx::query_as(Sql(format!(
                    "UPDATE phs_plugin_job SET locked_until_ms = $2 WHERE id IN (\
                       SELECT id FROM phs_plugin_job WHERE run_at_ms <= $1 AND locked_until_ms <= $1 \
                       ORDER BY run_at_ms, id LIMIT $3{skip}) \
                     RETURNING id{b}, team_id{b}, plugin_config_id{b}, name, payload{t}, attempt, run_at_ms",
                    skip = $d::SKIP_LOCKED,
                    b = $d::BIGINT,
                    t = $d::TEXT
                )))
                .bind(millis(now))
                .bind(millis(now) + lease.as_millis() as i64)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::query("claim due jobs"))?;
                let mut jobs = rows
                    .into_iter()
                    .map(|(id, team_id, plugin_config_id, name, payload, attempt, run_at_ms)| {
                        let payload = serde_json::from_str(&payload)
                            .map_err(|e| StoreError::Invalid(format!("job {id}: payload is not JSON: {e}")))?;
                        let run_at = DateTime::from_timestamp_millis(run_at_ms).ok_or_else(|| {
                            StoreError::Invalid(format!("job {id}: run_at_ms {run_at_ms} out of range"))
                        })?;
                        Ok(Job { id, spec: NewJob { team_id, plugin_config_id, name, payload, attempt, run_at } })
                    })
                    .collect::<Result<Vec<Job>>>()?;
                // RETURNING does not keep the sub-select's order.
                jobs.sort_by_key(|j| (j.spec.run_at, j.id));
                Ok(jobs)
            }

            async fn extend_leases(&self, ids: &[i64], now: DateTime<Utc>, lease: std::time::Duration) -> Result<()> {
                let until = millis(now) + lease.as_millis() as i64;
                let mut tx = self.pool.begin().await.map_err(StoreError::query("begin extending job leases"))?;
                for id in ids {
                    sqlx::query("UPDATE phs_plugin_job SET locked_until_ms = $1 WHERE id = $2")
                        .bind(until)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("extend a job lease"))?;
                }
                tx.commit().await.map_err(StoreError::query("commit extended job leases"))
            }

            async fn finish_job(&self, id: i64) -> Result<()> {
                sqlx::query("DELETE FROM phs_plugin_job WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::query("finish a job"))?;
                Ok(())
            }

            async fn pending_jobs(&self, plugin_config_id: Option<i64>) -> Result<i64> {
                sqlx::query_scalar(Sql(format!(
                    "SELECT count(*){b} FROM phs_plugin_job WHERE ($1{b} IS NULL OR plugin_config_id = $1)",
                    b = $d::BIGINT
                )))
                .bind(plugin_config_id)
                .fetch_one(&self.pool)
                .await
                .map_err(StoreError::query("count pending jobs"))
            }
        }
    };
}

pub(crate) use impl_sql_jobs;
