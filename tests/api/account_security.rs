//! What a stolen session or an old mail cannot do: reset links die with the
//! password and the login email they were made for, the login email changes only
//! with the current password (counted against the account, not the address), a
//! hostile name still gets its mail, and bad paths and settings answer in our
//! own words.

use reqwest::StatusCode;

use std::time::Duration;

use crate::helpers::mail::{
    app_with_mail, app_with_mail_and, ask_for_link, link_path, message_to, messages_to,
    set_password, unquote,
};
use crate::helpers::{
    Browser, Needs, PASSWORD, TestApp, body, skip_without, spawn_app, unique_email, wait_until,
};

const NEW_PASSWORD: &str = "a-long-password";

/// The reset links mailed to `email` so far.
fn links_to(email: &str) -> Vec<String> {
    messages_to(email)
        .iter()
        .filter(|message| message.contains("reset-password"))
        .map(|message| link_path(message))
        .collect()
}

/// Asks for a link and returns its path, once its mail has arrived.
async fn mailed_link(app: &TestApp, email: &str) -> String {
    let before = links_to(email);
    let response = ask_for_link(&app.browser(), email).await;
    assert_eq!(response.status(), StatusCode::OK);
    let new_link = || {
        links_to(email)
            .into_iter()
            .find(|link| !before.contains(link))
    };
    wait_until("the reset mail", Duration::from_secs(10), || async {
        new_link().is_some()
    })
    .await;
    new_link().unwrap()
}

/// The link no longer opens a form, and posting a password through it changes
/// nothing.
async fn assert_dead(app: &TestApp, user_id: i64, path: &str) {
    let browser = app.browser();
    let page = browser.get(path).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND, "{path}");
    assert!(!page.text().await.unwrap().contains("name=\"password\""));
    let hash = app.user(user_id).await.password_hash;
    browser.page("/login").await;
    let response = browser
        .post_form(
            path,
            &[
                ("password", "yet-another-password"),
                ("password_confirmation", "yet-another-password"),
            ],
        )
        .await;
    assert_ne!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.user(user_id).await.password_hash,
        hash,
        "nothing changed"
    );
}

/// Saves the profile with a new email, giving `password` as the current one.
async fn change_email(browser: &Browser, email: &str, password: &str) -> reqwest::Response {
    browser.page("/settings/profile").await;
    browser
        .post_form(
            "/settings/profile",
            &[
                ("name", "Ann"),
                ("email", email),
                ("current_password", password),
            ],
        )
        .await
}

/// Changes the password from `PASSWORD` to `NEW_PASSWORD` on the profile.
async fn change_password(browser: &Browser) -> reqwest::Response {
    browser.page("/settings/profile").await;
    browser
        .post_form(
            "/settings/password",
            &[
                ("current_password", PASSWORD),
                ("password", NEW_PASSWORD),
                ("password_confirmation", NEW_PASSWORD),
            ],
        )
        .await
}

#[tokio::test]
async fn using_one_link_kills_every_other() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email("ann");
    let (_, user_id) = app.signed_in_user("Ann", &email).await;
    let first = mailed_link(&app, &email).await;
    let second = mailed_link(&app, &email).await;

    let visitor = app.browser();
    let response = set_password(&visitor, &first, NEW_PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_dead(&app, user_id, &second).await;
}

#[tokio::test]
async fn a_password_change_on_the_profile_kills_earlier_links() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email("ann");
    let (browser, user_id) = app.signed_in_user("Ann", &email).await;
    let link = mailed_link(&app, &email).await;

    let response = change_password(&browser).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_dead(&app, user_id, &link).await;
}

#[tokio::test]
async fn an_operators_user_password_kills_earlier_links() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email("ann");
    let (_, user_id) = app.signed_in_user("Ann", &email).await;
    let link = mailed_link(&app, &email).await;

    let output = app
        .run_with_input(
            &["user:password", "--email", &email, "--password-stdin"],
            &format!("{NEW_PASSWORD}\n"),
        )
        .await;

    assert!(output.status.success(), "{output:?}");
    assert_dead(&app, user_id, &link).await;
}

#[tokio::test]
async fn a_link_mailed_to_the_old_address_dies_when_the_email_changes_and_the_old_address_is_told()
{
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let old = unique_email("ann");
    let (browser, user_id) = app.signed_in_user("Ann", &old).await;
    let link = mailed_link(&app, &old).await;
    let new = unique_email("ann");

    let response = change_email(&browser, &new, PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.user(user_id).await.email, new);
    assert_dead(&app, user_id, &link).await;
    let masked = format!("{}…@example.com", &new[..1]);
    let notice = || {
        messages_to(&old)
            .into_iter()
            .find(|m| m.contains("login email was changed"))
    };
    wait_until(
        "the notice to the old address",
        Duration::from_secs(10),
        || async { notice().is_some() },
    )
    .await;
    let notice = notice().unwrap();
    let text = unquote(&notice);
    assert!(text.contains(&masked), "{text}");
    assert!(!text.contains(&new), "the new address is not spelled out");
    assert!(
        !text.contains("http"),
        "no link that signs anyone in: {text}"
    );
}

#[tokio::test]
async fn the_login_email_changes_only_with_the_current_password() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    for (password, what) in [("", "none"), ("not-my-password", "a wrong one")] {
        let response = change_email(&browser, "eve@example.com", password).await;

        let html = body(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            html.contains("Enter your current password"),
            "{what}: {html}"
        );
        assert_eq!(app.user(user_id).await.email, "ann@example.com", "{what}");
    }
    // A name alone needs no password.
    browser.page("/settings/profile").await;
    let response = browser
        .post_form(
            "/settings/profile",
            &[("name", "Ann B"), ("email", "ann@example.com")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.user(user_id).await.name, "Ann B");
}

#[tokio::test]
async fn the_guess_limit_is_the_accounts_whatever_its_email() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    for n in 0..5 {
        let response = change_email(&browser, "eve@example.com", "wrong-guess").await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "guess {n}"
        );
    }

    // The email changes under the account (a host app may do it): the count stays.
    app.execute(&format!(
        "UPDATE users SET email = 'ann.b@example.com' WHERE id = {user_id}"
    ))
    .await;

    let refused = change_email(&browser, "eve@example.com", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let password_change = change_password(&browser).await;
    assert_eq!(password_change.status(), StatusCode::TOO_MANY_REQUESTS);
    let sign_in = app.browser().login("ann.b@example.com", PASSWORD).await;
    assert_eq!(sign_in.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.user(user_id).await.email, "ann.b@example.com");
}

#[tokio::test]
async fn a_name_with_line_breaks_still_gets_its_mail() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email("ann");
    let (_, user_id) = app.signed_in_user("Ann", &email).await;
    app.execute(&format!(
        "UPDATE users SET name = 'Ann\r\nBcc: eve@example.com' WHERE id = {user_id}"
    ))
    .await;

    ask_for_link(&app.browser(), &email).await;

    let message = message_to(&email).await;
    let to = message
        .lines()
        .find(|line| line.starts_with("To:"))
        .expect("a To header");
    assert!(to.contains(&email), "{to}");
    assert!(
        !message.lines().any(|line| line.starts_with("Bcc:")),
        "no header injected"
    );
    link_path(&message);
}

#[tokio::test]
async fn register_can_answer_the_same_for_a_known_and_an_unknown_email() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail_and(|config| config.register_reveals_accounts = false).await;
    let known = unique_email("ann");
    // An account an operator made: the page signs nobody in.
    let output = app
        .run_with_input(
            &[
                "user:create",
                "--email",
                &known,
                "--name",
                "Ann",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        )
        .await;
    assert!(output.status.success(), "{output:?}");
    let known_id = stripe_sync::db::users::find_by_email(&app.db, &known)
        .await
        .unwrap()
        .expect("made")
        .id;
    let hash = app.user(known_id).await.password_hash;
    let unknown = unique_email("ann");

    let for_known = app.browser().register("Eve", &known).await;
    let for_unknown = app.browser().register("Bob", &unknown).await;

    let strip = |html: String| html.split("authenticity_token").next().unwrap().to_string();
    let known_page = strip(body(for_known, StatusCode::OK).await);
    assert_eq!(known_page, strip(body(for_unknown, StatusCode::OK).await));
    assert!(known_page.contains("Check your mail"), "{known_page}");
    let told = message_to(&known).await;
    assert!(told.contains("tried to register"), "{told}");
    link_path(&told);
    assert!(message_to(&unknown).await.contains("account is ready"));
    assert_eq!(
        app.user(known_id).await.password_hash,
        hash,
        "nothing changed"
    );
    assert_eq!(app.user(known_id).await.name, "Ann");
    let signed_in = app.browser().login(&unknown, PASSWORD).await;
    assert_eq!(
        signed_in.status(),
        StatusCode::SEE_OTHER,
        "the new account works"
    );
}

#[tokio::test]
async fn a_path_that_cannot_be_read_gets_our_own_page() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    for path in ["/reset-password/%ff%fe", "/jobs/abc", "/jobs/abc/success"] {
        let response = browser.get(path).await;

        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(headers.contains_key("content-security-policy"), "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Page not found"), "{path}: {html}");
        assert!(!html.contains("Invalid URL") && !html.contains("Cannot parse"));
    }
    let html = body(
        browser.get("/login?next=/a&next=/b").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(html.contains("That request could not be read"), "{html}");
    assert!(!html.contains("Failed to deserialize"));
}

#[tokio::test]
async fn a_bad_database_url_exits_2_and_writes_nothing() {
    let folder =
        std::env::temp_dir().join(format!("stripe-sync-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&folder).unwrap();

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_stripe-sync"))
        .arg("migrate")
        .current_dir(&folder)
        .env("DATABASE_URL", "sqlite://u:Secret@/tmp/app.db")
        .env_remove("APP_KEY")
        .env_remove("LOG_DIR")
        .output()
        .await
        .unwrap();

    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("takes no user or password"), "{stderr}");
    assert!(!stderr.contains("Secret"));
    let left: Vec<_> = std::fs::read_dir(&folder).unwrap().collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
    std::fs::remove_dir(&folder).unwrap();
}
