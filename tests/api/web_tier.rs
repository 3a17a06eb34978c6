//! Many instances, restarts and floods: what a request relies on across requests
//! lives in the database or derives from APP_KEY, and limits are counted before
//! the work they guard.

use std::time::Duration;

use reqwest::StatusCode;
use stripe_sync::config::Limit;
use stripe_sync::db::users;

use crate::helpers::{PASSWORD, StripeSetup, body, location, spawn_app, spawn_app_customized};

fn limit(max: u32) -> Limit {
    Limit {
        max,
        window: Duration::from_secs(900),
    }
}

#[tokio::test]
async fn a_form_loaded_from_one_instance_is_accepted_by_another() {
    let first = spawn_app().await;
    let second = first.another_instance(|_| {}).await;
    let browser = first.browser();
    browser.page("/register").await;

    let response = browser.on(&second).register("Ann", "ann@example.com").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        users::find_by_email(&second.db, "ann@example.com")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn laravel_s_32_byte_app_key_signs_sessions_and_forms_across_instances() {
    let laravel_key = vec![42u8; 32];
    let first = spawn_app_customized(StripeSetup::Fake, |config| {
        config.app_key = secrecy::SecretBox::new(Box::new(laravel_key.clone()));
    })
    .await;
    assert_eq!(first.app_key, laravel_key);
    let second = first.another_instance(|_| {}).await;
    let (browser, user_id) = first.signed_in_user("Ann", "ann@example.com").await;
    browser.page("/settings/profile").await;

    // The session cookie and the form's token, signed by the first, pass the second.
    let response = browser
        .on(&second)
        .post_form(
            "/settings/profile",
            &[("name", "Ann Elsewhere"), ("email", "ann@example.com")],
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(second.user(user_id).await.name, "Ann Elsewhere");
}

#[tokio::test]
async fn a_form_loaded_before_a_restart_is_accepted_after_it() {
    let before = spawn_app().await;
    let (browser, user_id) = before.signed_in_user("Ann", "ann@example.com").await;
    browser.page("/settings/profile").await;
    before.stop();

    let after = before.another_instance(|_| {}).await;
    let response = browser
        .on(&after)
        .post_form(
            "/settings/profile",
            &[("name", "Ann Restarted"), ("email", "ann@example.com")],
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/profile");
    assert_eq!(after.user(user_id).await.name, "Ann Restarted");
}

#[tokio::test]
async fn forty_parallel_wrong_passwords_check_at_most_five_and_lock_out_every_instance() {
    let first = spawn_app().await;
    let second = first.another_instance(|_| {}).await;
    first.signed_in_user("Ann", "ann@example.com").await;
    let attacker = first.browser();

    let statuses = attacker
        .post_form_at_once(
            "/login",
            &[("email", "ann@example.com"), ("password", "guess-guess")],
            40,
        )
        .await;

    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    assert!(refused >= 35, "{refused} refused: {statuses:?}");
    let response = second.browser().login("ANN@example.com", PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    let html = body(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(html.contains("Too many sign-in attempts. Try again in 15 minutes."));
}

#[tokio::test]
async fn a_successful_sign_in_clears_the_account_s_failures() {
    let app = spawn_app().await;
    app.signed_in_user("Ann", "ann@example.com").await;
    let browser = app.browser();
    for _ in 0..4 {
        browser.login("ann@example.com", "guess-guess").await;
    }
    assert_eq!(
        browser.login("ann@example.com", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );

    for _ in 0..5 {
        let response = app.browser().login("ann@example.com", "guess-guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn registration_counts_against_the_address_limit() {
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.limits.sign_in_per_address = limit(2);
    })
    .await;
    app.signed_in_user("Ann", "ann@example.com").await;
    app.browser().login("nobody@example.com", PASSWORD).await;

    let response = app.browser().register("Bob", "bob@example.com").await;

    assert!(response.headers().contains_key("retry-after"));
    assert!(
        body(response, StatusCode::TOO_MANY_REQUESTS)
            .await
            .contains("Too many requests")
    );
    assert!(
        users::find_by_email(&app.db, "bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

/// Sign-in attempts for distinct unknown emails, as if sent from `address`.
async fn attempts_from(app: &crate::helpers::TestApp, address: &str, count: usize) -> Vec<u16> {
    let browser = app.browser();
    let token = browser.csrf_token().await;
    let mut statuses = Vec::new();
    for n in 0..count {
        let email = format!("probe{n}-{address}@example.com");
        let response = browser
            .client
            .post(format!("{}/login", app.address))
            .header("x-forwarded-for", format!("198.51.100.7, {address}"))
            .form(&[
                ("authenticity_token", token.as_str()),
                ("email", email.as_str()),
                ("password", "guess-guess"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_address_limit() {
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.limits.sign_in_per_address = limit(2);
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;

    assert_eq!(attempts_from(&app, "203.0.113.1", 3).await, [401, 401, 429]);
    assert_eq!(attempts_from(&app, "203.0.113.2", 2).await, [401, 401]);
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.limits.sign_in_per_address = limit(2);
    })
    .await;

    assert_eq!(attempts_from(&app, "203.0.113.1", 2).await, [401, 401]);
    // Another forged address does not escape: the socket's peer is the client.
    assert_eq!(attempts_from(&app, "203.0.113.2", 1).await, [429]);
}

#[tokio::test]
async fn actions_that_call_stripe_are_limited_per_user() {
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.limits.stripe_actions_per_user = Limit {
            max: 3,
            window: Duration::from_secs(60),
        };
    })
    .await;
    let (ann, _) = app.signed_in_user("Ann", "ann@example.com").await;
    ann.page("/settings/stripe").await;
    ann.press("create").await;
    ann.press("refresh").await;
    ann.press("refresh").await;
    let calls = app.stripe.total_calls();

    let response = ann.post_form("/settings/stripe/refresh", &[]).await;

    assert!(response.headers().contains_key("retry-after"));
    let html = body(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(html.contains("wait a minute and try again"));
    assert_eq!(app.stripe.total_calls(), calls, "refused before Stripe");
    let (bob, _) = app.signed_in_user("Bob", "bob@example.com").await;
    bob.page("/settings/stripe").await;
    assert!(bob.press("create").await.contains("created"));
}

#[tokio::test]
async fn every_sign_in_issues_a_new_session_id_even_over_a_signed_in_session() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    let before = browser.cookie("stripe_sync_session").expect("a session");

    let response = browser.login("ann@example.com", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let after = browser.cookie("stripe_sync_session").expect("a session");
    assert_ne!(before, after);
    assert!(browser.page("/settings/stripe").await.contains("Ann"));
}

#[tokio::test]
async fn signing_out_without_a_session_writes_no_session() {
    let app = spawn_app().await;
    let browser = app.browser();
    browser.page("/login").await;

    let response = browser.post_form("/logout", &[]).await;

    assert_eq!(location(&response), "/login");
    let set_cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set_cookies
            .iter()
            .all(|c| !c.starts_with("stripe_sync_session=")),
        "{set_cookies:?}"
    );
    assert!(browser.cookie("stripe_sync_session").is_none());
}

#[tokio::test]
async fn signed_in_pages_are_never_stored_by_caches() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    let response = browser.get("/settings/stripe").await;

    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        !response.headers().contains_key("strict-transport-security"),
        "plain http: no HSTS"
    );
}

#[tokio::test]
async fn an_https_app_url_sends_strict_transport_security() {
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.app_url = "https://billing.example.com".into();
    })
    .await;

    let response = app.browser().get("/login").await;

    let hsts = response.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert!(hsts.starts_with("max-age="), "{hsts}");
}

#[tokio::test]
async fn a_database_url_with_an_unknown_scheme_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("stripe-sync-badurl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();

    for command in ["migrate", "serve"] {
        for url in ["postgress://ann:s3cret@db.example/app", "mysqll://db/app"] {
            let output = app
                .command(&[command])
                .env("DATABASE_URL", url)
                .current_dir(&dir)
                .output()
                .await
                .unwrap();

            assert_eq!(output.status.code(), Some(2), "{command} {url}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
            assert!(
                stderr.contains("sqlite:, postgres://, postgresql://, mysql:// or mariadb://"),
                "{stderr}"
            );
            assert!(!stderr.contains("s3cret"), "{stderr}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "created {left:?}");
    std::fs::remove_dir(&dir).unwrap();
}

/// A session cookie as a browser sends it: `name=value`, signed with `key`.
fn session_cookie_signed_with(key: &[u8], session_id: &str) -> String {
    use tower_sessions::cookie::{Cookie, CookieJar, Key};
    let mut jar = CookieJar::new();
    jar.signed_mut(&Key::from(key))
        .add(Cookie::new("stripe_sync_session", session_id.to_string()));
    jar.get("stripe_sync_session")
        .unwrap()
        .stripped()
        .to_string()
}

#[tokio::test]
async fn a_session_signed_before_keys_per_purpose_stays_signed_in_and_moves_to_its_own_key() {
    let long_key = vec![7u8; 64];
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.app_key = secrecy::SecretBox::new(Box::new(long_key.clone()));
    })
    .await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    // The signed value is a 44-character MAC, then the session id.
    let signed = browser.cookie("stripe_sync_session").unwrap();
    let session_id = &signed[44..];
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get_profile = |cookie: String| {
        client
            .get(format!("{}/settings/profile", app.address))
            .header("cookie", cookie)
            .send()
    };

    // Earlier versions signed with a 64-byte APP_KEY itself.
    let legacy = session_cookie_signed_with(&long_key, session_id);
    assert_ne!(legacy, format!("stripe_sync_session={signed}"));
    let response = get_profile(legacy.clone()).await.unwrap();
    let renewed = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("stripe_sync_session="))
        .map(|value| value.split(';').next().unwrap().to_string());
    let page = body(response, StatusCode::OK).await;
    assert!(page.contains("ann@example.com"), "still signed in: {page}");
    let renewed = renewed.expect("the session cookie is signed anew");
    assert_ne!(renewed, legacy, "under the session's own key");
    assert!(renewed.ends_with(session_id));

    // A cookie signed with any other key is no session at all.
    let forged = session_cookie_signed_with(&[8u8; 64], session_id);
    let response = get_profile(forged).await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(location(&response).starts_with("/login"));
}
