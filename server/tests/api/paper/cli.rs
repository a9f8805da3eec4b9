//! `vortex paper …` and `vortex halt …` with the real binary: the operator acts for a user through the same
//! actions as the browser and the REST API (checks, limits and audit entries with surface `cli`), and can
//! throw and release kill switches while the web is down.

use backend::paper::actions::{self as act, Owner};
use serde_json::Value;

use super::{SMA, app_without_workers, series, shifted, strategy, trader};
use crate::helpers::vortex_cli as vortex;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test]
async fn paper_the_operator_starts_lists_pauses_and_stops_a_users_run_from_the_command_line() {
    let app = app_without_workers().await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let sid = sid.to_string();
    let start = |extra: &[&str]| {
        let mut args = vec![
            "paper",
            "start",
            "--email",
            "ann@example.org",
            "--strategy",
            &sid,
            "--instrument",
            "ETH/BTC",
            "--timeframe",
            "5m",
        ];
        args.extend_from_slice(extra);
        vortex(&app, &args)
    };

    // The fee is required (even zero): refused by the argument parser, naming it.
    let (code, _, err) = start(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--fee"), "{err}");
    // Unknown owner, unknown instrument: exit 1 and say which.
    let (code, _, err) = vortex(&app, &["paper", "list", "--email", "nobody@example.org"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no account with the address nobody@example.org"),
        "{err}"
    );
    let (code, _, err) = vortex(
        &app,
        &[
            "paper",
            "start",
            "--email",
            "ann@example.org",
            "--strategy",
            &sid,
            "--instrument",
            "DOGE/XYZ",
            "--timeframe",
            "5m",
            "--fee",
            "0.001",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no instrument DOGE/XYZ"), "{err}");
    // A refusal of the action is said as such (fill model unknown).
    let (code, _, err) = start(&["--fee", "0.001", "--fill", "sometimes"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("refused:"), "{err}");

    let (code, out, err) = start(&["--fee", "0.001", "--cash", "5000"]);
    assert_eq!(code, 0, "{err}");
    let run = json(&out)["run_ids"][0].as_str().unwrap().to_owned();
    let run_id: uuid::Uuid = run.parse().unwrap();
    let d = act::get(&ann, &app.ctx, Owner::Me, run_id).await.unwrap();
    assert_eq!(d.summary.instrument_id, inst);
    assert_eq!(d.summary.status.as_str(), "active");

    let (code, out, _) = vortex(&app, &["paper", "list", "--email", "ann@example.org"]);
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().starts_with(&run), "{out}");
    let (code, out, _) = vortex(&app, &["paper", "show", "--email", "ann@example.org", &run]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["status"], "active");

    let (code, out, _) = vortex(
        &app,
        &["paper", "pause", "--email", "ann@example.org", &run],
    );
    assert_eq!((code, json(&out)["status"].as_str()), (0, Some("paused")));
    // Pausing twice is refused, nothing changes.
    let (code, _, err) = vortex(
        &app,
        &["paper", "pause", "--email", "ann@example.org", &run],
    );
    assert_eq!(code, 1, "{err}");
    // Another user's address does not reach ann's run.
    trader(&app, "bob@example.org").await;
    let (code, _, err) = vortex(&app, &["paper", "stop", "--email", "bob@example.org", &run]);
    assert_eq!(code, 1);
    assert!(err.starts_with("refused:"), "{err}");
    let (code, out, _) = vortex(&app, &["paper", "stop", "--email", "ann@example.org", &run]);
    assert_eq!((code, json(&out)["status"].as_str()), (0, Some("stopped")));

    // Every change is audited as the operator's, from the command line.
    let surfaces: Vec<(String, Value)> = sqlx::query_as(
        "select event, detail->'surface' from audit_event
          where event in ('paper_started', 'paper_paused', 'paper_stopped') order by audit_event_id",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(surfaces.len(), 3, "{surfaces:?}");
    assert!(surfaces.iter().all(|(_, s)| s == "cli"), "{surfaces:?}");
}

#[tokio::test]
async fn paper_the_operator_throws_lists_and_releases_kill_switches_from_the_command_line() {
    let app = app_without_workers().await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = super::start(&app, &ann, &super::new_run(sid, inst)).await;

    // A reason is required, and the mode must be one of the three.
    let (code, _, err) = vortex(&app, &["halt", "--user", "ann@example.org"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("refused:"), "{err}");
    let (code, _, err) = vortex(
        &app,
        &["halt", "--platform", "--mode", "panic", "--reason", "x"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("panic"), "{err}");
    // Nothing to aim at: the argument parser says what is missing.
    let (code, _, _) = vortex(&app, &["halt", "--reason", "x"]);
    assert_eq!(code, 2);

    let (code, out, err) = vortex(
        &app,
        &[
            "halt",
            "--user",
            "ann@example.org",
            "--mode",
            "reduce_only",
            "--reason",
            "margin call on the desk",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let user_switch = json(&out);
    assert_eq!(user_switch["scope"], "user");
    assert_eq!(user_switch["mode"], "reduce_only");
    let (code, out, err) = vortex(
        &app,
        &[
            "halt",
            "--run",
            &run.to_string(),
            "--mode",
            "flatten",
            "--reason",
            "bad fills",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let run_switch = json(&out);

    // The run shows both; the strictest (flatten) applies.
    let d = act::get(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert_eq!(d.kill_switches.len(), 2);
    assert_eq!(d.effective_gate, "flatten");
    let (code, out, _) = vortex(&app, &["halt", "--list"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out).as_array().unwrap().len(), 2);

    for s in [&user_switch, &run_switch] {
        let id = s["switch_id"].as_str().unwrap();
        let (code, out, err) = vortex(&app, &["halt", "--release", id, "--reason", "resolved"]);
        assert_eq!(code, 0, "{err}");
        assert!(json(&out)["released_at"].is_string(), "{out}");
    }
    // Released twice: refused.
    let id = user_switch["switch_id"].as_str().unwrap();
    let (code, _, _) = vortex(&app, &["halt", "--release", id]);
    assert_eq!(code, 1);
    let (_, out, _) = vortex(&app, &["halt", "--list"]);
    assert_eq!(json(&out).as_array().unwrap().len(), 0);
    assert!(
        act::get(&ann, &app.ctx, Owner::Me, run)
            .await
            .unwrap()
            .kill_switches
            .is_empty()
    );
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event
          where event in ('kill_switch_thrown', 'kill_switch_released') and detail->>'surface' = 'cli'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 4);
}
