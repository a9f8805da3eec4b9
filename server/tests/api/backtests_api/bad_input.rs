//! Bad input to the strategies and backtests REST API is refused with a clear status and the field
//! named.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{app, finish, get, import, post, strategy_from, submission, trader};

#[tokio::test]
async fn backtests_api_bad_input_is_refused_with_a_clear_status_and_the_field_named() {
    let app = app(false, vec![("BODY_LIMIT_BYTES", "4096".into())]).await;
    let token = trader(&app, "bea@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let valid = submission(strategy, xrp);
    let with = |changes: Value| {
        let mut v = valid.clone();
        for (k, x) in changes.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };

    // (body, status, error code, field, words in the message)
    let cases: Vec<(Value, StatusCode, &str, &str, &str)> = vec![
        (
            with(json!({"from": ""})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "from",
            "start",
        ),
        (
            with(json!({"to": " "})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "to",
            "end",
        ),
        (
            with(json!({"from": "2019-10-13", "to": "2019-10-11"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "to",
            "after the start",
        ),
        (
            with(json!({"from": "yesterday"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "from",
            "yesterday",
        ),
        (
            with(json!({"instrument_ids": [9999]})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "instrument_ids",
            "no instrument 9999",
        ),
        (
            with(json!({"instrument_ids": []})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "instrument_ids",
            "at least one",
        ),
        (
            with(json!({"from": "2020-01-01", "to": "2020-02-01"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "range",
            "stored candles run from 2019-10-11 to 2019-10-13",
        ),
        (
            with(json!({"timeframe": "1h"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "range",
            "no candles of this timeframe",
        ),
        (
            with(json!({"timeframe": "7m"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "timeframe",
            "7m",
        ),
        (
            with(json!({"params": {"fast": 1000}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_strategy",
            "",
            "fast",
        ),
        (
            with(json!({"params": {"fast": "many"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_strategy",
            "",
            "fast",
        ),
        (
            with(json!({"params": {"speed": 3}})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "params",
            "no parameter `speed`",
        ),
        (
            with(json!({"params": {"fast": null}})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "params.fast",
            "a number, a boolean or a string",
        ),
        (
            with(json!({"version": 7})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "version",
            "no version 7",
        ),
        (
            with(json!({"fee": 0.5})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "fee",
            "10 %",
        ),
        (
            with(json!({"initial_cash": -1})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "initial_cash",
            "positive",
        ),
        (
            with(json!({"fill": "whenever"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "fill",
            "next_open",
        ),
        (
            with(json!({"colour": "blue"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "colour",
            "unknown field `colour`",
        ),
        (
            with(json!({"strategy_id": Uuid::new_v4()})),
            StatusCode::NOT_FOUND,
            "not_found",
            "",
            "",
        ),
        (
            with(json!({"strategy_id": "not-a-uuid"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "strategy_id",
            "strategy_id",
        ),
    ];
    for (body, status, code, field, words) in &cases {
        let r = post(&app, "/api/v1/backtests", &token, body).await;
        assert_eq!(r.status, *status, "{body}: {r:?}");
        assert_eq!(r.error(), *code, "{body}: {r:?}");
        assert_eq!(r.field(), *field, "{body}: {r:?}");
        assert!(r.message().contains(words), "{body}: {r:?}");
    }
    // A parameter out of range names the problem in `problems` too.
    let r = post(
        &app,
        "/api/v1/backtests",
        &token,
        &with(json!({"params": {"fast": 1000}})),
    )
    .await;
    assert!(
        r.json["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fast")
    );
    let none: i64 = sqlx::query_scalar("select count(*) from backtest_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(none, 0, "no refused submission queued anything");

    // Transport-level problems, in the same JSON format.
    let url = app.url("/api/v1/backtests");
    let raw = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
    };
    let malformed = finish(raw("{\"strategy_id\": ".into(), "application/json")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{malformed:?}");
    assert_eq!(malformed.error(), "bad_request");
    let form = finish(raw(valid.to_string(), "application/x-www-form-urlencoded")).await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{form:?}");
    assert_eq!(form.error(), "unsupported_media_type");
    let mut big = valid.clone();
    big["timeframe"] = json!("5".repeat(8000));
    let declared = finish(raw(big.to_string(), "application/json")).await;
    assert_eq!(
        declared.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{declared:?}"
    );
    assert_eq!(declared.error(), "payload_too_large");
    // Without a declared length the limit applies while reading.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(big.to_string())];
    let streamed = finish(
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await;
    assert_eq!(
        streamed.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{streamed:?}"
    );
    assert_eq!(streamed.error(), "payload_too_large");
    let too_big_strategy = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"source": "#".repeat(5000)}),
    )
    .await;
    assert_eq!(too_big_strategy.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Malformed ids and queries, unknown paths and sorts.
    let bad_id = get(&app, "/api/v1/backtests/not-a-uuid", &token).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST, "{bad_id:?}");
    assert_eq!(bad_id.error(), "bad_request");
    let bad_filter = get(&app, "/api/v1/backtests?status=finished", &token).await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_filter.field(), "status");
    let bad_sort = get(&app, "/api/v1/backtests?sort=colour", &token).await;
    assert_eq!(bad_sort.field(), "sort");
    let bad_query = get(&app, "/api/v1/backtests?instrument_id=one", &token).await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_query.error(), "bad_request");
    let unknown = get(&app, "/api/v1/nothing/here", &token).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error(), "not_found");
    let unknown_field = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"template": "macd", "owner": "someone"}),
    )
    .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    assert!(unknown_field.message().contains("owner"));
}
