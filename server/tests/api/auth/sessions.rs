//! Sessions: timeouts, tampered tokens, CSRF on form posts, revoking one's own other session and
//! the session cookie over HTTPS.

use base64::Engine;
use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::Value;
use uuid::Uuid;

use super::{
    PASSWORD, app_with_mail, browser, csrf, csrf_in, location, post_form, session_status, sign_in,
    verified_user,
};
use crate::{
    helpers::{Options, TestApp, spawn_app_with},
    smtp::SmtpSink,
};

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_timeouts() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "ida@example.org").await;
    assert_eq!(session_status(&app, &c).await, StatusCode::OK);
    sqlx::query("update user_session set last_seen_at = now() - interval '31 minutes'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(session_status(&app, &c).await, StatusCode::UNAUTHORIZED);

    let c = browser();
    sign_in(&app, &c, "ida@example.org", PASSWORD).await;
    assert_eq!(session_status(&app, &c).await, StatusCode::OK);
    sqlx::query("update user_session set expires_at = now() - interval '1 second'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(session_status(&app, &c).await, StatusCode::UNAUTHORIZED);
}

fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("vortex_session=") || v.starts_with("__Host-vortex_session="))
        .expect("session cookie set")
}

#[tokio::test]
async fn tampered_session_tokens_are_rejected() {
    let (app, sink) = app_with_mail().await;
    verified_user(&app, &sink, "jo@example.org").await;
    let c = browser();
    let resp = sign_in(&app, &c, "jo@example.org", PASSWORD).await;
    let cookie = session_cookie(&resp);
    let jwt = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();

    let with = |token: &str| {
        let client = Client::new();
        let url = app.url("/api/session");
        let token = token.to_owned();
        async move {
            client
                .get(url)
                .header("cookie", format!("vortex_session={token}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(with(&jwt).await, StatusCode::OK, "the genuine token works");

    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert_eq!(
        with(&format!("{none_header}.{}.", parts[1])).await,
        StatusCode::UNAUTHORIZED,
        "alg none"
    );
    let hs512 = b64.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    assert_eq!(
        with(&format!("{hs512}.{}.{}", parts[1], parts[2])).await,
        StatusCode::UNAUTHORIZED,
        "other alg"
    );

    let sign = |claims: &Value, key: &[u8], alg: jsonwebtoken::Algorithm| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let wrong_key = sign(
        &claims,
        b"0123456789abcdef0123456789abcdef-wrong",
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(
        with(&wrong_key).await,
        StatusCode::UNAUTHORIZED,
        "wrong key"
    );

    let mut edited = claims.clone();
    edited["sub"] = Value::String(Uuid::new_v4().to_string());
    let edited_payload = b64.encode(serde_json::to_vec(&edited).unwrap());
    assert_eq!(
        with(&format!("{}.{edited_payload}.{}", parts[0], parts[2])).await,
        StatusCode::UNAUTHORIZED,
        "edited claims"
    );

    let mut expired = claims.clone();
    expired["exp"] = Value::from(chrono::Utc::now().timestamp() - 3600);
    expired["nbf"] = Value::from(chrono::Utc::now().timestamp() - 7200);
    expired["iat"] = Value::from(chrono::Utc::now().timestamp() - 7200);
    // Signed with the real key, so only expiry can make it fail.
    let key = real_jwt_key(&app);
    assert_eq!(
        with(&sign(&claims, &key, jsonwebtoken::Algorithm::HS256)).await,
        StatusCode::OK,
        "real key re-signs validly"
    );
    assert_eq!(
        with(&sign(&expired, &key, jsonwebtoken::Algorithm::HS256)).await,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = Value::String("someone-else".into());
    assert_eq!(
        with(&sign(&wrong_aud, &key, jsonwebtoken::Algorithm::HS256)).await,
        StatusCode::UNAUTHORIZED,
        "audience"
    );
}

/// The session key as the app derives it from JWT_SECRET (see backend::auth::AuthKeys).
fn real_jwt_key(app: &TestApp) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    use secrecy::ExposeSecret;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(
        app.ctx.settings.jwt_secret.expose_secret().as_bytes(),
    )
    .unwrap();
    mac.update(b"vortex/session-jwt/v1");
    mac.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn cross_site_and_tokenless_form_posts_are_refused() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "kim@example.org").await;
    let token = csrf(&app, &c, "/account").await;
    let form = [("display_name", "Hacked"), ("time_zone", "UTC")];

    let no_token = c
        .post(app.url("/account/profile"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let with_token: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf", token.as_str())])
        .collect();
    let cross_site = c
        .post(app.url("/account/profile"))
        .header("sec-fetch-site", "cross-site")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let foreign = c
        .post(app.url("/account/profile"))
        .header("origin", "https://evil.example")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let forged: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf", "forged-token")])
        .collect();
    assert_eq!(
        c.post(app.url("/account/profile"))
            .form(&forged)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let name: String = sqlx::query_scalar("select display_name from app_user")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(name, "Ann", "nothing changed");

    let ok = c
        .post(app.url("/account/profile"))
        .header("origin", app.address.as_str())
        .form(&[
            ("display_name", "Kim"),
            ("time_zone", "Europe/Zurich"),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&ok), "/account?ok=profile");
    let (name, tz): (String, String) =
        sqlx::query_as("select display_name, time_zone from app_user")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!((name.as_str(), tz.as_str()), ("Kim", "Europe/Zurich"));
}

#[tokio::test]
async fn a_user_can_revoke_their_own_other_session() {
    let (app, sink) = app_with_mail().await;
    let laptop = verified_user(&app, &sink, "pia@example.org").await;
    let phone = browser();
    sign_in(&app, &phone, "pia@example.org", PASSWORD).await;
    let sids: Vec<String> =
        sqlx::query_scalar("select session_id from user_session order by created_at")
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    let phone_public = backend::auth::session::public_id(&sids[1]);
    let resp = post_form(
        &app,
        &laptop,
        "/account",
        &format!("/account/sessions/{phone_public}/revoke"),
        &[],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=session_revoked#sessions");
    assert_eq!(session_status(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(session_status(&app, &laptop).await, StatusCode::OK);
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed_secure_httponly_and_lax() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![
            ("SMTP_URL", sink.url()),
            ("PUBLIC_URL", "https://vortex.test".into()),
        ],
    })
    .await;
    // Create the user directly (the https cookies would not round-trip over this plain-HTTP test client).
    let hash = backend::auth::password::hash(PASSWORD.into())
        .await
        .unwrap();
    let mut conn = app.ctx.db.acquire().await.unwrap();
    backend::auth::users::insert(
        &mut conn,
        "sam@example.org",
        "",
        &hash,
        backend::auth::Role::Trader,
    )
    .await
    .unwrap();
    drop(conn);
    let c = Client::builder().redirect(Policy::none()).build().unwrap();
    let page = c.get(app.url("/signin")).send().await.unwrap();
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf_cookie.starts_with("__Host-vortex_csrf=")
            && csrf_cookie.contains("; Secure")
            && csrf_cookie.contains("HttpOnly")
    );
    let token = csrf_in(&page.text().await.unwrap());
    let cookie_pair = csrf_cookie.split(';').next().unwrap().to_owned();
    let resp = c
        .post(app.url("/auth/signin"))
        .header("cookie", cookie_pair)
        .form(&[
            ("email", "sam@example.org"),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = session_cookie(&resp);
    assert!(session.starts_with("__Host-vortex_session="), "{session}");
    for attr in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
    assert!(!session.contains("Domain="));
    assert_eq!(resp.headers()["cache-control"], "no-store");
}
