//! Expiring locks in SQL ([`crate::store::Locks`]), shared by Postgres and
//! SQLite: one upsert takes a free or expired lock, or extends one's own,
//! and returns a row only when the caller holds it afterwards.

macro_rules! impl_sql_locks {
    ($store:ty) => {
        #[async_trait]
        impl $crate::store::Locks for $store {
            async fn lock(&self, key: &str, owner: &str, ttl: std::time::Duration) -> Result<bool> {
                let now = Utc::now().timestamp_millis();
                let held: Option<String> = sqlx::query_scalar(
                    "INSERT INTO phs_lock (key, owner, expires_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_ms = excluded.expires_ms \
                     WHERE phs_lock.owner = excluded.owner OR phs_lock.expires_ms <= $4 \
                     RETURNING owner",
                )
                .bind(key)
                .bind(owner)
                .bind(now + ttl.as_millis() as i64)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::query("take a lock"))?;
                Ok(held.is_some())
            }

            async fn unlock(&self, key: &str, owner: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM phs_lock WHERE key = $1 AND owner = $2")
                    .bind(key)
                    .bind(owner)
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::query("release a lock"))?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use impl_sql_locks;
