use reqwest::StatusCode;
use stripe_sync::db::users;

use crate::helpers::{PASSWORD, StripeSetup, body, location, spawn_app, spawn_app_customized};

#[tokio::test]
async fn healthz_answers_without_a_session() {
    let app = spawn_app().await;
    let response = app.browser().get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn registering_signs_the_user_in_and_lands_on_the_stripe_page() {
    let app = spawn_app().await;
    let browser = app.browser();

    let response = browser.register("Ann Example", "Ann@Example.com").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/stripe");
    let html = browser.page("/settings/stripe").await;
    assert!(html.contains("Your account is ready."));
    let user = users::find_by_email(&app.db, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "Ann Example");
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(!user.password_hash.contains(PASSWORD));
}

#[tokio::test]
async fn registration_with_bad_fields_says_why_and_creates_nothing() {
    let app = spawn_app().await;
    let browser = app.browser();
    let fields = [
        ("name", " "),
        ("email", "not-an-email"),
        ("password", "short"),
        ("password_confirmation", "short"),
    ];

    let response = browser.post_form("/register", &fields).await;

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("Name is required."));
    assert!(html.contains("Enter a valid email address"));
    assert!(html.contains("Password must be at least 8 characters."));
    assert!(
        users::find_by_email(&app.db, "not-an-email")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn registering_a_taken_email_is_refused() {
    let app = spawn_app().await;
    app.signed_in_user("Ann", "ann@example.com").await;

    let response = app.browser().register("Other Ann", "ANN@example.com").await;

    assert!(
        body(response, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .contains("already registered")
    );
}

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_login() {
    let app = spawn_app().await;

    for path in ["/settings/stripe", "/settings/profile"] {
        let response = app.browser().get(path).await;
        assert!(response.status().is_redirection(), "{path}");
        assert!(location(&response).starts_with("/login?next="), "{path}");
    }
    let response = app
        .browser()
        .post_form("/settings/stripe/create", &[])
        .await;
    assert!(response.status().is_redirection());
    assert!(location(&response).starts_with("/login"));
    assert_eq!(app.stripe.total_calls(), 0);
}

#[tokio::test]
async fn a_wrong_password_says_only_invalid_email_or_password() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.post_form("/logout", &[]).await;

    let wrong = app
        .browser()
        .login("ann@example.com", "not-the-password")
        .await;
    let unknown = app.browser().login("nobody@example.com", PASSWORD).await;

    for response in [wrong, unknown] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let html = response.text().await.unwrap();
        assert!(html.contains("Invalid email or password."));
        assert!(!html.contains("not-the-password"));
    }
}

#[tokio::test]
async fn login_with_the_right_password_cycles_the_session_id() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.post_form("/logout", &[]).await;
    // The "signed out" flash message lives in an anonymous session.
    let before = browser
        .cookie("stripe_sync_session")
        .expect("anonymous session");

    let response = browser.login("ann@example.com", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/stripe");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly"));
    assert!(set_cookie.contains("SameSite=Lax"));
    assert!(
        !set_cookie.contains("Secure"),
        "plain http app url: no Secure flag"
    );
    let after = browser
        .cookie("stripe_sync_session")
        .expect("signed-in session");
    assert_ne!(before, after, "login must issue a new session id");
    assert!(
        browser
            .page("/settings/stripe")
            .await
            .contains("Welcome back, Ann.")
    );
}

#[tokio::test]
async fn login_only_follows_a_local_next_path() {
    let app = spawn_app().await;
    app.signed_in_user("Ann", "ann@example.com").await;
    let browser = app.browser();

    let response = browser
        .post_form(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;

    assert_eq!(location(&response), "/settings/stripe");
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_even_with_the_right_password() {
    let app = spawn_app().await;
    app.signed_in_user("Ann", "ann@example.com").await;
    let browser = app.browser();
    for _ in 0..5 {
        let response = browser.login("ann@example.com", "guess-guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    let response = browser.login("ann@example.com", PASSWORD).await;

    assert!(
        body(response, StatusCode::TOO_MANY_REQUESTS)
            .await
            .contains("Too many sign-in attempts")
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    let response = browser.post_form("/logout", &[]).await;

    assert_eq!(location(&response), "/login");
    assert!(
        browser
            .get("/settings/stripe")
            .await
            .status()
            .is_redirection()
    );
}

#[tokio::test]
async fn a_post_without_a_csrf_token_is_rejected_and_changes_nothing() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    let missing = browser.post_raw("/settings/stripe/create", &[]).await;
    let forged = browser
        .post_raw(
            "/settings/profile",
            &[
                ("authenticity_token", "Zm9yZ2Vk"),
                ("name", "Mallory"),
                ("email", "m@example.com"),
            ],
        )
        .await;

    for response in [missing, forged] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("This form has expired")
        );
    }
    let user = app.user(user_id).await;
    assert_eq!(user.name, "Ann");
    assert!(user.stripe_id.is_none());
    assert_eq!(app.stripe.total_calls(), 0);
}

#[tokio::test]
async fn an_unknown_path_gets_the_sites_404_page() {
    let app = spawn_app().await;
    let response = app.browser().get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn cookies_are_secure_when_the_app_is_served_over_https() {
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.app_url = "https://billing.example.com".into();
    })
    .await;
    let browser = app.browser();
    let form = browser.get("/register").await;
    let csrf_cookie = form
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(csrf_cookie.contains("Secure"), "{csrf_cookie}");
    // `__Host-`: a browser keeps it only Secure, for path / and without a Domain.
    assert!(
        csrf_cookie.starts_with("__Host-stripe_sync_csrf="),
        "{csrf_cookie}"
    );
    assert!(csrf_cookie.contains("Path=/") && !csrf_cookie.contains("Domain"));

    let response = browser.register("Ann", "ann@example.com").await;

    let session_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(session_cookie.starts_with("__Host-stripe_sync_session="));
    assert!(session_cookie.contains("Secure"), "{session_cookie}");
    assert!(session_cookie.contains("Path=/") && !session_cookie.contains("Domain"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    for path in [
        "/healthz",
        "/login",
        "/settings/stripe",
        "/static/app.css",
        "/no/such/page",
    ] {
        let response = browser.get(path).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{path} lacks {name}"))
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("referrer-policy"), "strict-origin-when-cross-origin");
    }
}

#[tokio::test]
async fn the_stylesheet_is_served_with_cache_headers() {
    let app = spawn_app().await;
    let response = app.browser().get("/static/app.css").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn an_oversized_form_post_is_refused_before_any_handler_runs() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let huge = "x".repeat(200 * 1024);

    let response = browser
        .post_form(
            "/settings/profile",
            &[("name", huge.as_str()), ("email", "ann@example.com")],
        )
        .await;

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.user(user_id).await.name, "Ann");
}

#[tokio::test]
async fn an_internal_error_shows_the_sites_500_page_and_leaks_nothing() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    app.execute("DROP TABLE payments").await;

    let response = browser.get("/settings/stripe").await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let html = response.text().await.unwrap();
    assert!(html.contains("Something went wrong"));
    assert!(html.contains("/static/app.css"), "styled like the site");
    for leak in ["payments", "sqlx", "no such table", "relation"] {
        assert!(!html.contains(leak), "the page leaks {leak:?}");
    }
}

/// `laravel-password` hashed by another bcrypt library (Python's, as PHP's
/// `password_hash` would: cost 12, `$2y$`).
const LARAVEL_HASH: &str = "$2y$12$myDngC.kOsaojElspQehQer827pZ.vKKq44rqQ8xcIFbvZi1f6t5i";

#[tokio::test]
async fn a_user_with_laravel_s_bcrypt_hash_signs_in_and_the_hash_is_never_rewritten() {
    let app = spawn_app().await;
    let user = users::NewUser {
        name: "Laravel User",
        email: "laravel@example.com",
        password_hash: LARAVEL_HASH,
    };
    let id = users::insert(&app.db, user, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let browser = app.browser();

    let wrong = browser
        .login("laravel@example.com", "not-the-password")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let response = browser
        .login("laravel@example.com", "laravel-password")
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/stripe");
    assert_eq!(
        app.user(id).await.password_hash,
        LARAVEL_HASH,
        "left as Laravel wrote it"
    );
}

#[tokio::test]
async fn with_password_hasher_bcrypt_new_passwords_are_stored_as_laravel_writes_them() {
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.password_hasher = Some(stripe_sync::config::PasswordScheme::Bcrypt);
    })
    .await;
    let browser = app.browser();

    browser.register("Ann Example", "ann@example.com").await;

    let user = users::find_by_email(&app.db, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.password_hash.starts_with("$2y$12$"),
        "{}",
        user.password_hash
    );
    let again = app.browser();
    let response = again.login("ann@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

/// Posts the profile form from `browser` with another browser's CSRF cookie and
/// token, as a cookie planted by an attacker would.
async fn post_with_planted_pair(
    victim: &crate::helpers::Browser,
    attacker: &crate::helpers::Browser,
) -> StatusCode {
    let token = attacker.csrf_token().await;
    let cookie = attacker
        .cookie("stripe_sync_csrf")
        .expect("the attacker's csrf cookie");
    let session = victim
        .cookie("stripe_sync_session")
        .expect("the victim's session");
    // A client without a cookie jar: the jar would replace this Cookie header.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    client
        .post(format!("{}/settings/profile", victim.base))
        .header(
            "cookie",
            format!("stripe_sync_csrf={cookie}; stripe_sync_session={session}"),
        )
        .form(&[
            ("authenticity_token", token.as_str()),
            ("name", "Mallory"),
            ("email", "mallory@example.com"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_csrf_pair_picked_up_anonymously_is_refused_in_a_signed_in_session() {
    let app = spawn_app().await;
    let (victim, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let attacker = app.browser();

    let status = post_with_planted_pair(&victim, &attacker).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.user(user_id).await.name, "Ann");
}

#[tokio::test]
async fn a_csrf_pair_from_another_users_session_is_refused() {
    let app = spawn_app().await;
    let (victim, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let (attacker, _) = app.signed_in_user("Mal", "mal@example.com").await;
    attacker.page("/settings/profile").await;

    let status = post_with_planted_pair(&victim, &attacker).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.user(user_id).await.name, "Ann");
    // The victim's own pair still works.
    let own = victim
        .post_form(
            "/settings/profile",
            &[("name", "Ann B"), ("email", "ann@example.com")],
        )
        .await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
}
