//! `STRIPE_CUSTOMER_FIELDS` and the three-way sync: every mapped field is
//! pushed when it changed here, taken in when it changed in Stripe (the login
//! email never), and left alone as a conflict when it changed on both sides.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::commands::{json_report, stderr};
use crate::helpers::webhooks::deliver;
use crate::helpers::{Browser, StripeSetup, TestApp, spawn_app, spawn_app_customized, text_rows};
use stripe_sync::fields::FieldMap;

const MAP: &str = "phone=phone,address.line1=line1,address.city=city,address.country=country,\
                   preferred_locales=locales,metadata.team=team";

/// The columns [`MAP`] names, as the app's migration would add them.
const MAP_COLUMNS: &[(&str, &str)] = &[
    ("phone", "VARCHAR(40) NULL"),
    ("line1", "VARCHAR(255) NULL"),
    ("city", "VARCHAR(255) NULL"),
    ("country", "VARCHAR(2) NULL"),
    ("locales", "VARCHAR(255) NULL"),
    ("team", "TEXT NULL"),
];

const WEBHOOK_SECRET: &str = "whsec_test_current";

/// An app on a database whose `users` has the app's own columns for the map (as
/// a Laravel app's migration would add them), with the map configured.
async fn app_with_fields() -> TestApp {
    app_with_fields_and(|_| {}).await
}

async fn app_with_fields_and(customize: impl FnOnce(&mut stripe_sync::config::Config)) -> TestApp {
    let plain = spawn_app().await;
    plain.add_user_columns(MAP_COLUMNS).await;
    let app = plain
        .another_instance(|config| {
            config.customer_fields = FieldMap::parse(MAP).unwrap();
            config.webhook_secret = Some(WEBHOOK_SECRET.to_string().into());
            customize(config);
        })
        .await;
    plain.stop();
    app
}

pub(crate) async fn set_local(app: &TestApp, user_id: i64, assignments: &str) {
    app.execute(&format!(
        "UPDATE users SET {assignments} WHERE id = {user_id}"
    ))
    .await;
}

/// The mapped columns of a user, by column.
async fn local(app: &TestApp, user_id: i64) -> BTreeMap<&'static str, Option<String>> {
    let columns = [
        "name", "email", "phone", "line1", "city", "country", "locales", "team",
    ];
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST({c} AS TEXT)"))
        .collect();
    let sql = format!(
        "SELECT {} FROM users WHERE id = {user_id}",
        select.join(", ")
    );
    let row = text_rows(&app.db, &sql).await.remove(0);
    columns.into_iter().zip(row).collect()
}

/// A signed-in user with every mapped field filled, linked through the page.
async fn linked_user_with_fields(app: &TestApp) -> (Browser, i64, String) {
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    set_local(
        app,
        user_id,
        "phone = '+47 22 00 00 00', line1 = 'Karl Johans gate 1', city = 'Oslo', \
         country = 'NO', locales = 'nb, en', team = 'red'",
    )
    .await;
    let html = browser.press("create").await;
    assert!(html.contains("created"), "{html}");
    let stripe_id = app.user(user_id).await.stripe_id.unwrap();
    (browser, user_id, stripe_id)
}

/// The binary with the map, to the end, expecting `code`; its `--json` report.
async fn run_with_map(app: &TestApp, args: &[&str], code: i32) -> Value {
    run_with_fields(app, MAP, args, code).await
}

/// The binary with `STRIPE_CUSTOMER_FIELDS=map`, to the end, expecting `code`;
/// its `--json` report.
pub(crate) async fn run_with_fields(app: &TestApp, map: &str, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = app
        .command(&all)
        .env("STRIPE_CUSTOMER_FIELDS", map)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
    json_report(&output)
}

/// Sends the stand-in's events since `from` to the app's webhook, signed.
async fn deliver_since(app: &TestApp, from: usize) -> usize {
    let events = app.stripe.events();
    for event in &events[from..] {
        deliver(app, &event.to_string()).await;
    }
    events.len()
}

/// The phone changed here to `here` and, before that was pushed, in Stripe to
/// `in_stripe` (the webhook delivered).
async fn phone_changed_on_both_sides(
    app: &TestApp,
    user_id: i64,
    stripe_id: &str,
    here: &str,
    in_stripe: &str,
) {
    set_local(app, user_id, &format!("phone = '{here}'")).await;
    let seen = app.stripe.events().len();
    app.stripe.edit_customer(stripe_id, &[("phone", in_stripe)]);
    deliver_since(app, seen).await;
}

/// A linked user whose phone changed here to +47 55 55 55 55 and, before that
/// was pushed, in Stripe to +47 11 11 11 11.
async fn user_with_a_phone_conflict(app: &TestApp) -> (Browser, i64, String) {
    let (browser, user_id, stripe_id) = linked_user_with_fields(app).await;
    let (here, in_stripe) = ("+47 55 55 55 55", "+47 11 11 11 11");
    phone_changed_on_both_sides(app, user_id, &stripe_id, here, in_stripe).await;
    (browser, user_id, stripe_id)
}

/// Presses "Keep mine" (`local`) or "Keep Stripe's" (`stripe`) for `field`.
async fn keep(browser: &Browser, field: &str, side: &str) -> reqwest::Response {
    browser
        .post_form("/settings/stripe/keep", &[("field", field), ("side", side)])
        .await
}

fn customer_field<'a>(customer: &'a crate::stripe_fake::FakeCustomer, path: &[&str]) -> &'a Value {
    let mut value = &customer.fields[path[0]];
    for key in &path[1..] {
        value = &value[*key];
    }
    value
}

#[tokio::test]
async fn the_map_pushes_phone_address_locales_and_metadata_on_create_and_update() {
    let app = app_with_fields().await;
    let (browser, user_id, stripe_id) = linked_user_with_fields(&app).await;

    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer_field(&customer, &["phone"]), "+47 22 00 00 00");
    assert_eq!(customer_field(&customer, &["address", "city"]), "Oslo");
    assert_eq!(
        customer_field(&customer, &["address", "line1"]),
        "Karl Johans gate 1"
    );
    assert_eq!(customer_field(&customer, &["address", "country"]), "NO");
    assert_eq!(
        customer_field(&customer, &["preferred_locales"]),
        &serde_json::json!(["nb", "en"])
    );
    assert_eq!(
        customer.metadata.get("team").map(String::as_str),
        Some("red")
    );
    assert_eq!(
        customer.metadata.get("user_id"),
        Some(&user_id.to_string()),
        "ours, beside the app's"
    );

    set_local(&app, user_id, "phone = '+47 99 99 99 99', city = 'Bergen'").await;
    let html = browser.press("update").await;

    assert!(html.contains("Sent to Stripe: phone, city."), "{html}");
    let forms = app
        .stripe
        .customer_forms(&format!("/v1/customers/{stripe_id}"));
    let sent = forms.last().unwrap();
    assert_eq!(sent["phone"], "+47 99 99 99 99");
    assert_eq!(sent["address[city]"], "Bergen");
    assert_eq!(
        sent["address[line1]"], "Karl Johans gate 1",
        "an address goes whole"
    );
    for unchanged in ["name", "email", "preferred_locales[0]", "metadata[team]"] {
        assert!(
            !sent.contains_key(unchanged),
            "{unchanged} was sent: {sent:?}"
        );
    }
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer_field(&customer, &["phone"]), "+47 99 99 99 99");
    assert_eq!(customer_field(&customer, &["address", "city"]), "Bergen");
    assert_eq!(customer.name.as_deref(), Some("Ann"));

    let writes = app.stripe.write_calls();
    let html = browser.press("update").await;
    assert!(html.contains("nothing was sent to Stripe"), "{html}");
    assert_eq!(app.stripe.write_calls(), writes, "nothing changed: no call");
}

#[tokio::test]
async fn an_invalid_map_exits_2_naming_the_field_or_column_and_changes_nothing() {
    let app = spawn_app().await;
    app.execute("ALTER TABLE users ADD COLUMN seats INTEGER NULL")
        .await;
    let fresh = crate::helpers::fresh_database_url().await;
    for (map, named, url) in [
        ("fax=fax", "\"fax\"", app.database_url.as_str()),
        (
            "metadata.user_id=id",
            "metadata.user_id",
            app.database_url.as_str(),
        ),
        ("phone=mobile", "users.mobile", app.database_url.as_str()),
        (
            "metadata.seats=seats",
            "users.seats",
            app.database_url.as_str(),
        ),
        ("phone=phone", "users.phone", fresh.as_str()),
    ] {
        for command in [&["migrate"][..], &["stripe:sync-customers", "--update"][..]] {
            let output = app
                .command(command)
                .env("DATABASE_URL", url)
                .env("STRIPE_CUSTOMER_FIELDS", map)
                .output()
                .await
                .unwrap();
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{map} {command:?}: {err}");
            assert!(err.contains(named), "{map}: {err}");
            assert_eq!(
                err.lines().filter(|l| l.contains(named)).count(),
                1,
                "one line names it: {err}"
            );
        }
    }
    let db = stripe_sync::db::Db::connect(&fresh).await.unwrap();
    assert!(
        !stripe_sync::db::dialect::catalog::table_exists(&db, "users")
            .await
            .unwrap(),
        "a refused map migrates nothing"
    );
}

#[tokio::test]
async fn the_portal_story_a_billing_email_changed_in_stripe_is_never_pushed_over() {
    let app = app_with_fields().await;
    let (browser, user_id, stripe_id) = linked_user_with_fields(&app).await;
    let seen = app.stripe.events().len();

    // She sets her billing email in the billing portal; the webhook arrives.
    app.stripe
        .edit_customer(&stripe_id, &[("email", "billing@ann.example")]);
    deliver_since(&app, seen).await;

    let html = browser.page("/settings/stripe").await;
    assert!(html.contains("billing@ann.example"), "{html}");
    assert!(html.contains("changed in Stripe"), "{html}");
    assert_eq!(
        app.user(user_id).await.email,
        "ann@example.com",
        "the login email stays hers"
    );

    // She renames herself in the app; the nightly run pushes the name only.
    browser
        .post_form(
            "/settings/profile",
            &[("name", "Ann Lee"), ("email", "ann@example.com")],
        )
        .await;
    let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;

    assert_eq!(report["updated"], 1, "{report}");
    let forms = app
        .stripe
        .customer_forms(&format!("/v1/customers/{stripe_id}"));
    let sent = forms.last().unwrap();
    assert_eq!(sent.get("name").map(String::as_str), Some("Ann Lee"));
    assert!(
        !sent.contains_key("email"),
        "the email was not sent: {sent:?}"
    );
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer.email.as_deref(), Some("billing@ann.example"));
    assert_eq!(customer.name.as_deref(), Some("Ann Lee"));
    assert_eq!(app.user(user_id).await.email, "ann@example.com");

    // And the page's Update does the same.
    let writes = app.stripe.write_calls();
    let html = browser.press("update").await;
    assert!(
        html.contains("Changed in Stripe and kept there: email."),
        "{html}"
    );
    assert_eq!(app.stripe.write_calls(), writes);
}

/// Each way a copy of the customer comes in: a webhook, a replayed event, a
/// `--refresh` list page.
#[derive(Debug, Clone, Copy)]
enum Arrives {
    Webhook,
    Replay,
    Refresh,
}

#[tokio::test]
async fn an_address_edited_in_stripe_lands_locally_with_no_push_however_it_arrives() {
    for arrives in [Arrives::Webhook, Arrives::Replay, Arrives::Refresh] {
        let app = app_with_fields().await;
        let (browser, user_id, stripe_id) = linked_user_with_fields(&app).await;
        let seen = app.stripe.events().len();

        app.stripe.edit_customer(
            &stripe_id,
            &[
                ("address[line1]", "Bryggen 2"),
                ("address[city]", "Bergen"),
                ("address[country]", "NO"),
                ("phone", ""),
            ],
        );
        let writes = app.stripe.write_calls();
        match arrives {
            Arrives::Webhook => {
                deliver_since(&app, seen).await;
            }
            Arrives::Replay => {
                let report =
                    run_with_map(&app, &["stripe:replay-events", "--since", "1h"], 0).await;
                assert_eq!(report["failed"], 0, "{report}");
            }
            Arrives::Refresh => {
                let report = run_with_map(&app, &["stripe:sync-customers", "--refresh"], 0).await;
                assert_eq!(report["refreshed"], 1, "{report}");
            }
        }

        let row = local(&app, user_id).await;
        assert_eq!(row["line1"].as_deref(), Some("Bryggen 2"), "{arrives:?}");
        assert_eq!(row["city"].as_deref(), Some("Bergen"), "{arrives:?}");
        assert_eq!(row["phone"], None, "cleared in Stripe: {arrives:?}");
        assert_eq!(row["team"].as_deref(), Some("red"));
        assert_eq!(app.stripe.write_calls(), writes, "no push: {arrives:?}");

        let calls = app.stripe.total_calls();
        let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;
        assert_eq!(report["unchanged"], 1, "{arrives:?}: {report}");
        assert_eq!(app.stripe.total_calls(), calls, "{arrives:?}: 0 calls");
        let html = browser.page("/settings/stripe").await;
        assert!(!html.contains("conflict"), "{arrives:?}");
        assert!(html.contains("Bryggen 2"));
    }
}

#[tokio::test]
async fn both_sides_changed_is_a_conflict_until_someone_chooses() {
    let app = app_with_fields().await;
    let (browser, user_id, stripe_id) = user_with_a_phone_conflict(&app).await;

    let html = browser.page("/settings/stripe").await;
    assert!(html.contains(">conflict<"), "{html}");
    assert!(html.contains("+47 11 11 11 11") && html.contains("+47 55 55 55 55"));
    assert!(
        html.contains("Keep mine") && html.contains("Keep Stripe's"),
        "{html}"
    );

    let writes = app.stripe.write_calls();
    let html = browser.press("update").await;
    assert!(
        html.contains("left as they are until you choose: phone"),
        "{html}"
    );
    let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;
    assert_eq!(
        report["conflicts"],
        serde_json::json!([{"user_id": user_id, "fields": ["phone"]}]),
        "{report}"
    );
    assert_eq!(app.stripe.write_calls(), writes, "nothing pushed");
    assert_eq!(
        local(&app, user_id).await["phone"].as_deref(),
        Some("+47 55 55 55 55")
    );
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer_field(&customer, &["phone"]), "+47 11 11 11 11");

    // "Keep mine" pushes the local phone.
    let kept = keep(&browser, "phone", "local").await;
    assert_eq!(kept.status(), StatusCode::SEE_OTHER);
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer_field(&customer, &["phone"]), "+47 55 55 55 55");

    // Again, and "Keep Stripe's" takes Stripe's.
    phone_changed_on_both_sides(
        &app,
        user_id,
        &stripe_id,
        "+47 66 66 66 66",
        "+47 22 22 22 22",
    )
    .await;
    let writes = app.stripe.write_calls();
    keep(&browser, "phone", "stripe").await;
    assert_eq!(
        local(&app, user_id).await["phone"].as_deref(),
        Some("+47 22 22 22 22")
    );
    assert_eq!(
        app.stripe.write_calls(),
        writes,
        "taking Stripe's calls nothing"
    );

    // A bad choice changes nothing.
    let html = browser.page("/settings/stripe").await;
    assert!(!html.contains(">conflict<"), "settled");
    keep(&browser, "phone", "both").await;
    let html = browser.page("/settings/stripe").await;
    assert!(
        html.contains("Choose “Keep mine” or “Keep Stripe"),
        "{html}"
    );
    keep(&browser, "fax", "local").await;
    let html = browser.page("/settings/stripe").await;
    assert!(
        html.contains("That field is not synced with Stripe"),
        "{html}"
    );
    assert_eq!(app.stripe.write_calls(), writes);
}

#[tokio::test]
async fn prefer_local_settles_a_bulk_run_and_prefer_stripe_keeps_stripe_s() {
    let app = app_with_fields().await;
    let (_, ann, ann_customer) = linked_user_with_fields(&app).await;
    let (_, bob) = app.signed_in_user("Bob", "bob@example.com").await;
    app.customers.create_customer(bob).await.unwrap();
    let bob_customer = app.user(bob).await.stripe_id.unwrap();

    set_local(&app, ann, "city = 'Tromsø'").await;
    set_local(&app, bob, "team = 'green'").await;
    let seen = app.stripe.events().len();
    app.stripe.edit_customer(
        &ann_customer,
        &[
            ("address[line1]", "Karl Johans gate 1"),
            ("address[city]", "Trondheim"),
            ("address[country]", "NO"),
        ],
    );
    app.stripe
        .edit_customer(&bob_customer, &[("metadata[team]", "blue")]);
    deliver_since(&app, seen).await;

    let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;
    assert_eq!(report["conflicts"].as_array().unwrap().len(), 2, "{report}");

    let report = run_with_map(
        &app,
        &["stripe:sync-customers", "--update", "--prefer", "local"],
        0,
    )
    .await;
    assert_eq!(report["updated"], 2, "{report}");
    assert_eq!(report["conflicts"], serde_json::json!([]));
    let ann_customer = app.stripe.customer(&ann_customer).unwrap();
    assert_eq!(
        customer_field(&ann_customer, &["address", "city"]),
        "Tromsø"
    );
    let bob_customer = app.stripe.customer(&bob_customer).unwrap();
    assert_eq!(bob_customer.metadata["team"], "green");

    // The other way round, with the same bob.
    set_local(&app, bob, "team = 'purple'").await;
    let seen = app.stripe.events().len();
    app.stripe
        .edit_customer(&bob_customer.id, &[("metadata[team]", "yellow")]);
    deliver_since(&app, seen).await;
    let writes = app.stripe.write_calls();
    let report = run_with_map(
        &app,
        &["stripe:sync-customers", "--update", "--prefer", "stripe"],
        0,
    )
    .await;
    assert_eq!(report["pulled"], 1, "{report}");
    assert_eq!(local(&app, bob).await["team"].as_deref(), Some("yellow"));
    assert_eq!(app.stripe.write_calls(), writes);

    let bad = app
        .command(&["stripe:sync-customers", "--update", "--prefer", "mine"])
        .env("STRIPE_CUSTOMER_FIELDS", MAP)
        .output()
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("local or stripe"), "{}", stderr(&bad));
}

#[tokio::test]
async fn a_user_from_before_the_map_starts_from_the_local_values() {
    // Linked before the map existed and never read since: no base, no snapshot.
    let plain = spawn_app_customized(StripeSetup::Fake, |_| {}).await;
    let (_, user_id, stripe_id) = plain.linked_user().await;
    plain
        .execute("UPDATE users SET stripe_base = NULL, stripe_snapshot = NULL")
        .await;
    plain.stop();
    let app = {
        plain.add_user_columns(MAP_COLUMNS).await;
        plain
            .another_instance(|config| config.customer_fields = FieldMap::parse(MAP).unwrap())
            .await
    };
    set_local(&app, user_id, "phone = '+1 555 0100'").await;

    let calls = app.stripe.total_calls();
    let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;
    assert_eq!(report["unchanged"], 1, "{report}");
    assert_eq!(
        app.stripe.total_calls(),
        calls,
        "nothing known of Stripe's side: no call"
    );

    // Once Stripe's side is read, a phone only the app has is pushed.
    run_with_map(&app, &["stripe:sync-customers", "--refresh"], 0).await;
    let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;
    assert_eq!(report["updated"], 1, "{report}");
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer_field(&customer, &["phone"]), "+1 555 0100");
    assert_eq!(
        local(&app, user_id).await["phone"].as_deref(),
        Some("+1 555 0100")
    );
}

#[tokio::test]
async fn the_keep_buttons_need_the_csrf_token_and_count_against_the_per_user_limit() {
    let app = app_with_fields_and(|config| {
        config.limits.stripe_actions_per_user = stripe_sync::config::Limit {
            max: 3,
            window: std::time::Duration::from_secs(60),
        };
    })
    .await;
    let (browser, user_id, stripe_id) = user_with_a_phone_conflict(&app).await;

    let forged = browser
        .post_raw(
            "/settings/stripe/keep",
            &[("field", "phone"), ("side", "local")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer_field(&customer, &["phone"]), "+47 11 11 11 11");

    // The create and the forged post took two of three; one more goes through,
    // the next is refused.
    let response = keep(&browser, "address.city", "local").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let writes = app.stripe.write_calls();
    let refused = keep(&browser, "phone", "local").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.stripe.write_calls(), writes, "refused before Stripe");
    assert_eq!(
        local(&app, user_id).await["phone"].as_deref(),
        Some("+47 55 55 55 55")
    );
}

#[tokio::test]
async fn a_value_the_column_cannot_take_is_shown_not_pulled_and_the_webhook_still_succeeds() {
    let plain = spawn_app().await;
    plain
        .execute(
            "ALTER TABLE users ADD COLUMN mobile VARCHAR(40) NOT NULL DEFAULT '';\n\
             ALTER TABLE users ADD COLUMN land VARCHAR(2) NULL",
        )
        .await;
    let app = plain
        .another_instance(|config| {
            config.customer_fields = FieldMap::parse("phone=mobile,address.country=land").unwrap();
            config.webhook_secret = Some(WEBHOOK_SECRET.to_string().into());
        })
        .await;
    plain.stop();
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    set_local(&app, user_id, "mobile = '+47 1', land = 'NO'").await;
    browser.press("create").await;
    let stripe_id = app.user(user_id).await.stripe_id.unwrap();

    // Stripe clears the phone (the column takes no NULL) and sets a country
    // longer than the column's two characters.
    let seen = app.stripe.events().len();
    app.stripe
        .edit_customer(&stripe_id, &[("phone", ""), ("address[country]", "Norway")]);
    deliver_since(&app, seen).await;

    let rows = text_rows(
        &app.db,
        &format!("SELECT mobile, land FROM users WHERE id = {user_id}"),
    )
    .await;
    assert_eq!(rows[0][0].as_deref(), Some(""), "cleared to '', not NULL");
    let sqlite = matches!(app.db, stripe_sync::db::Db::Sqlite(_));
    if sqlite {
        // SQLite enforces no length: the value fits.
        assert_eq!(rows[0][1].as_deref(), Some("Norway"));
    } else {
        assert_eq!(rows[0][1].as_deref(), Some("NO"), "too long: not pulled");
        let html = browser.page("/settings/stripe").await;
        assert!(html.contains("Norway") && html.contains("changed in Stripe"));
    }
}
