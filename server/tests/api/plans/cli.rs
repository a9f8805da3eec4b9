//! `vortex plans …`: the operator's commands go through the same actions (audited with surface `cli`).

use reqwest::Method;

use super::{app, limit, person, rest};
use crate::helpers::vortex_cli as vortex;

#[tokio::test]
async fn plans_the_operator_creates_sets_and_assigns_plans_from_the_command_line() {
    let app = app(vec![]).await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (code, out, err) = vortex(
        &app,
        &[
            "plans",
            "create",
            "--slug",
            "pro",
            "--name",
            "Pro",
            "--price-minor",
            "1900",
            "--limit",
            "strategies=50",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = vortex(
        &app,
        &[
            "plans",
            "set-limit",
            "--plan",
            "pro",
            "--limit",
            "concurrent_backtests",
            "--value",
            "-2",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("limits.concurrent_backtests"), "{err}");
    let (code, out, err) = vortex(
        &app,
        &[
            "plans",
            "set-limit",
            "--plan",
            "pro",
            "--limit",
            "concurrent_backtests",
            "--value",
            "4",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = vortex(
        &app,
        &[
            "plans",
            "assign",
            "--email",
            "nobody@example.org",
            "--plan",
            "pro",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = vortex(
        &app,
        &[
            "plans",
            "assign",
            "--email",
            "ann@example.org",
            "--plan",
            "pro",
            "--reason",
            "beta tester",
            "--override",
            "history_days=30",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("concurrent_backtests") && out.contains('4'),
        "{out}"
    );
    let (code, out, _) = vortex(&app, &["plans", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("pro") && out.contains("free") && out.contains("(default)"),
        "{out}"
    );

    let (_, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&ann.token), None).await;
    assert_eq!(me["plan"]["slug"], "pro");
    assert_eq!(limit(&me, "strategies")["value"], 50);
    assert_eq!(limit(&me, "history_days")["value"], 30);
    assert_eq!(me["reason"], "beta tester");
    let surfaces: Vec<String> = sqlx::query_scalar(
        "select detail->>'surface' from audit_event where event like 'plan_%' order by created_at",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(surfaces, vec!["cli", "cli", "cli"]);
}
