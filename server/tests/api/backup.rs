//! Data safety: `scripts/backup.sh` → `scripts/restore.sh` round trip with every table compared, the app
//! booting on the restored database, retention; and Redis holding nothing Postgres cannot rebuild.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::{
    helpers::{RedisServer, TestDb, base_env, free_port, wait_for_job},
    nginx::VortexProc,
};

fn script(name: &str) -> Command {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    let mut c = Command::new("bash");
    c.arg(path);
    c
}

/// (row count, md5 of all rows in a stable order) for every table in schema public, plus every sequence's
/// last value.
async fn fingerprint(url: &str) -> BTreeMap<String, (i64, String)> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables
         where table_schema = 'public' and table_type = 'BASE TABLE' order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        // Ordering by the row's own text makes the checksum independent of physical order and of the
        // table's key, and covers every column.
        let (n, md5): (i64, Option<String>) = sqlx::query_as(&format!(
            r#"select count(*), md5(string_agg(r::text, '|' order by r::text)) from public."{t}" r"#
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        out.insert(t, (n, md5.unwrap_or_default()));
    }
    let seqs: Vec<(String, Option<i64>)> = sqlx::query_as(
        "select sequencename::text, last_value from pg_sequences where schemaname = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (s, v) in seqs {
        out.insert(format!("sequence {s}"), (v.unwrap_or(0), String::new()));
    }
    out
}

#[tokio::test]
async fn a_backup_restores_into_a_new_database_identically_and_the_app_boots_on_it() {
    let db = TestDb::new().await;
    // A populated database: jobs in every status with payloads, effects, and an identity sequence moved on.
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "insert into job (job_id, queue, kind, payload, status, attempts, last_error, finished_at, request_id)
         select gen_random_uuid(), 'default', 'kind_' || (i % 7),
                jsonb_build_object('i', i, 'note', 'ünïcødé ' || repeat('x', i % 50), 'nested', jsonb_build_array(i, null, true)),
                (array['queued','running','done','failed','cancelled'])[1 + i % 5],
                i % 4, case when i % 5 = 3 then E'boom\nline two \"quoted\"' end,
                case when i % 5 in (2, 3, 4) then now() - (i || ' minutes')::interval end,
                'req-' || i
         from generate_series(1, 2000) i",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "insert into housekeeping_run (job_id, jobs_pruned)
         select job_id, row_number() over (order by job_id) from job where status = 'done' limit 300",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("delete from housekeeping_run where jobs_pruned % 10 = 0")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let before = fingerprint(&db.url).await;
    assert_eq!(before["job"].0, 2000);
    assert_eq!(before["housekeeping_run"].0, 270);
    assert!(before.contains_key("_sqlx_migrations"));

    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    // Old dumps of this prefix (older than the retention) and an unrelated file.
    for name in [
        "vortex-20200101T000000Z.dump",
        "vortex-20200102T000000Z.dump",
    ] {
        std::fs::write(backups.join(name), "old").unwrap();
        let status = Command::new("touch")
            .args(["-d", "30 days ago"])
            .arg(backups.join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::fs::write(backups.join("notes.txt"), "keep me").unwrap();

    let started = Instant::now();
    let out = script("backup.sh")
        .env("DATABASE_URL", &db.url)
        .env("BACKUP_DIR", &backups)
        .env("BACKUP_PREFIX", "vortex")
        .env("BACKUP_RETENTION_DAYS", "7")
        .env("BACKUP_KEEP_MIN", "1")
        .env("BACKUP_METRICS_FILE", dir.path().join("backup.prom"))
        .output()
        .unwrap();
    let backup_time = started.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "backup.sh failed:\n{log}");
    let dump = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let name = Path::new(&dump).file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("vortex-")
            && name.ends_with("Z.dump")
            && name.len() == "vortex-20260101T000000Z.dump".len(),
        "timestamped name: {name}"
    );
    assert!(Path::new(&format!("{dump}.sha256")).exists());
    let mut left: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            "notes.txt".to_owned(),
            name.to_owned(),
            format!("{name}.sha256"),
        ],
        "retention removed the old dumps only:\n{log}"
    );
    assert!(!log.contains("postgres://"), "the URL is never echoed");
    let metrics = std::fs::read_to_string(dir.path().join("backup.prom")).unwrap();
    assert!(
        metrics.contains("\nvortex_backup_last_success_timestamp_seconds "),
        "{metrics}"
    );

    // Restore into a database that does not exist yet (dropped at the end of the test).
    let name = format!("vortex_test_restore_{}", Uuid::new_v4().simple());
    let restored = TestDb {
        url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
        name,
    };
    let started = Instant::now();
    let out = script("restore.sh")
        .env("RESTORE_DATABASE_URL", &restored.url)
        .args(["--create", &dump])
        .output()
        .unwrap();
    let restore_time = started.elapsed();
    assert!(
        out.status.success(),
        "restore.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = fingerprint(&restored.url).await;
    assert_eq!(
        before, after,
        "every table's count and checksum, and sequences"
    );
    eprintln!(
        "backup {:.2}s, restore {:.2}s, {} tables",
        backup_time.as_secs_f64(),
        restore_time.as_secs_f64(),
        after.len()
    );

    // A second restore onto the now non-empty database is refused without --clean, accepted with it.
    let out = script("restore.sh")
        .env("RESTORE_DATABASE_URL", &restored.url)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--clean"));
    let out = script("restore.sh")
        .env("RESTORE_DATABASE_URL", &restored.url)
        .args(["--clean", &dump])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fingerprint(&restored.url).await, before);
    // A corrupted dump is caught by its checksum before anything is touched.
    let bad = dir.path().join("bad.dump");
    let mut bytes = std::fs::read(&dump).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    std::fs::copy(format!("{dump}.sha256"), dir.path().join("bad.dump.sha256")).unwrap();
    let out = script("restore.sh")
        .env("RESTORE_DATABASE_URL", &restored.url)
        .args(["--clean", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match its .sha256"));

    // The app runs on the restored database: migrations are already there, /ready is 200.
    let env = base_env(
        &restored,
        &format!("vortex-test-{}", Uuid::new_v4().simple()),
    );
    let status = Command::new(crate::helpers::vortex_bin())
        .arg("migrate")
        .env_clear()
        .envs(&env)
        .status()
        .unwrap();
    assert!(status.success(), "vortex migrate on the restored database");
    let app = VortexProc::start(&["serve", "--no-worker"], &env).await;
    let resp = reqwest::get(format!("http://127.0.0.1:{}/ready", app.port))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let resp = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/ops/jobs?status=failed&limit=500",
            app.port
        ))
        .bearer_auth(crate::helpers::OPS_TOKEN)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["jobs"].as_array().unwrap().len(),
        400,
        "the restored jobs are served"
    );
}

#[tokio::test]
async fn redis_holds_nothing_that_postgres_cannot_rebuild_queued_work_survives_a_flushed_redis() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let db = TestDb::new().await;
    let namespace = format!("vortex-test-{}", Uuid::new_v4().simple());
    let mut env = base_env(&db, &namespace);
    env.insert("REDIS_URL".into(), redis.url());
    // A long reconcile interval, so delivery has to come from the re-enqueue on (re)connect.
    env.insert("JOB_RECONCILE_SECS".into(), "3600".into());
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let settings = backend::settings::Settings::from_map(&env).unwrap();
    let ctx = backend::Ctx::new(settings).unwrap();

    // Work queued while no worker runs: rows in Postgres, ids in Redis.
    let mut jobs = Vec::new();
    for _ in 0..5 {
        let new = ctx
            .jobs
            .new_job("default", "housekeeping", serde_json::json!({}));
        jobs.push(ctx.jobs.enqueue(&new).await.unwrap().unwrap());
    }
    let redis_cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_ne!(redis_cli(&["dbsize"]), "0", "the queue is in Redis");

    // Redis loses everything: flushed, then restarted empty (no persistence on this server).
    assert_eq!(redis_cli(&["flushall"]), "OK");
    redis.stop();
    let _redis = RedisServer::start(port);
    assert_eq!(redis_cli(&["dbsize"]), "0");

    // A worker (the process the prod compose runs) starts against the empty Redis and does all the work.
    let started = Instant::now();
    let _worker = VortexProc::start(&["worker"], &env).await;
    for job in &jobs {
        let row = wait_for_job(&pool, *job, &["done"], Duration::from_secs(30)).await;
        assert_eq!(row.attempts, 1);
    }
    let runs: i64 = sqlx::query_scalar("select count(*) from housekeeping_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 5, "each job's effect exactly once");
    eprintln!(
        "5 jobs re-enqueued from Postgres and done {:.2}s after the worker started",
        started.elapsed().as_secs_f64()
    );
    pool.close().await;
}
