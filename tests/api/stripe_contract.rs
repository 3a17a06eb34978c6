//! Requests that fit the types Stripe publishes: a shipping group is never sent
//! without its required name, and a cleared locales list is never sent as `''`.
//! The user is told why, on the page, in the bulk report and in the log; the
//! other fields still go.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::customer_fields::{run_with_fields, set_local};
use crate::helpers::{TestApp, log_line_containing, spawn_app};
use stripe_sync::fields::FieldMap;

const MAP: &str = "phone=phone,preferred_locales=locales,shipping.name=ship_name,\
                   shipping.phone=ship_phone,shipping.address.city=ship_city";

const COLUMNS: &[(&str, &str)] = &[
    ("phone", "VARCHAR(40) NULL"),
    ("locales", "VARCHAR(255) NULL"),
    ("ship_name", "VARCHAR(255) NULL"),
    ("ship_phone", "VARCHAR(40) NULL"),
    ("ship_city", "VARCHAR(255) NULL"),
];

async fn app_with_shipping() -> TestApp {
    let plain = spawn_app().await;
    plain.add_user_columns(COLUMNS).await;
    let app = plain
        .another_instance(|config| config.customer_fields = FieldMap::parse(MAP).unwrap())
        .await;
    plain.stop();
    app
}

/// The binary with [`MAP`], to the end, expecting `code`; its `--json` report.
async fn run_with_map(app: &TestApp, args: &[&str], code: i32) -> Value {
    run_with_fields(app, MAP, args, code).await
}

fn sent_shipping(form: &BTreeMap<String, String>) -> bool {
    form.keys().any(|key| key.starts_with("shipping"))
}

/// The customer writes sent for a user's customer (or creates naming the user).
fn creates_for(app: &TestApp, user_id: i64) -> Vec<BTreeMap<String, String>> {
    app.stripe
        .customer_forms("/v1/customers")
        .into_iter()
        .filter(|form| form.get("metadata[user_id]") == Some(&user_id.to_string()))
        .collect()
}

#[tokio::test]
async fn shipping_without_a_name_is_not_sent_and_the_page_says_why() {
    let app = app_with_shipping().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    set_local(
        &app,
        user_id,
        "phone = '+47 22 00 00 00', ship_city = 'Oslo', ship_phone = '+47 1'",
    )
    .await;

    let html = browser.press("create").await;

    assert!(html.contains("created"), "{html}");
    assert!(
        html.contains("Shipping details were not sent to Stripe"),
        "{html}"
    );
    let created = creates_for(&app, user_id);
    assert_eq!(created.len(), 1);
    assert!(!sent_shipping(&created[0]), "{:?}", created[0]);
    assert_eq!(
        created[0]["phone"], "+47 22 00 00 00",
        "the rest still goes"
    );
    let stripe_id = app.user(user_id).await.stripe_id.unwrap();
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer.fields.get("shipping"), None);
    // The log says which user and why.
    log_line_containing(&[
        "field not sent to stripe",
        &format!("user_id={user_id}"),
        "shipping name column is empty",
    ])
    .await;

    // An update: the phone goes, the shipping still waits for its name.
    set_local(&app, user_id, "phone = '+47 99', ship_city = 'Bergen'").await;
    let html = browser.press("update").await;
    assert!(html.contains("Sent to Stripe: phone."), "{html}");
    assert!(
        html.contains("Shipping details were not sent to Stripe"),
        "{html}"
    );
    let path = format!("/v1/customers/{stripe_id}");
    let update = app.stripe.customer_forms(&path).pop().unwrap();
    assert_eq!(update["phone"], "+47 99");
    assert!(!sent_shipping(&update), "{update:?}");

    // With a name, the whole group goes.
    set_local(&app, user_id, "ship_name = 'Ann Hansen'").await;
    let html = browser.press("update").await;
    assert!(!html.contains("not sent"), "{html}");
    let update = app.stripe.customer_forms(&path).pop().unwrap();
    assert_eq!(update["shipping[name]"], "Ann Hansen");
    assert_eq!(update["shipping[address][city]"], "Bergen");
    assert_eq!(update["shipping[phone]"], "+47 1");
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer.fields["shipping"]["name"], "Ann Hansen");
}

#[tokio::test]
async fn bulk_runs_count_and_list_the_shipping_they_did_not_send() {
    let app = app_with_shipping().await;
    let ids = app.insert_users(3).await;
    let (nameless, named, plain) = (ids[0], ids[1], ids[2]);
    set_local(&app, nameless, "ship_city = 'Oslo', phone = '+47 5'").await;
    set_local(&app, named, "ship_city = 'Oslo', ship_name = 'Bo'").await;

    let report = run_with_map(&app, &["stripe:sync-customers", "--create"], 0).await;

    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["not_sent_not_listed"], 0, "{report}");
    let not_sent = report["not_sent"].as_array().unwrap();
    assert_eq!(not_sent.len(), 1, "{report}");
    assert_eq!(not_sent[0]["user_id"], nameless);
    assert_eq!(not_sent[0]["field"], "shipping");
    let reason = not_sent[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("the shipping name column is empty"),
        "{reason}"
    );
    assert!(!sent_shipping(&creates_for(&app, nameless)[0]));
    assert_eq!(creates_for(&app, nameless)[0]["phone"], "+47 5");
    assert_eq!(creates_for(&app, named)[0]["shipping[name]"], "Bo");
    assert!(!sent_shipping(&creates_for(&app, plain)[0]));

    // Each run says it again until the name is there: --update --force sends
    // every field, and still not the nameless shipping.
    let report = run_with_map(&app, &["stripe:sync-customers", "--update", "--force"], 0).await;
    let not_sent = report["not_sent"].as_array().unwrap();
    assert_eq!(not_sent.len(), 1, "{report}");
    assert_eq!(not_sent[0]["user_id"], nameless);
    let stripe_id = app.user(nameless).await.stripe_id.unwrap();
    let forced = app
        .stripe
        .customer_forms(&format!("/v1/customers/{stripe_id}"))
        .pop()
        .unwrap();
    assert_eq!(forced["phone"], "+47 5");
    assert!(!sent_shipping(&forced), "{forced:?}");

    // The text report lists it among the other reasons.
    let output = app
        .command(&["stripe:sync-customers", "--update", "--force"])
        .env("STRIPE_CUSTOMER_FIELDS", MAP)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!(
            "user {nameless}: shipping not sent: the shipping name column is empty"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_cleared_locales_column_is_not_sent_and_the_user_is_told_to_clear_it_in_stripe() {
    let app = app_with_shipping().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    set_local(&app, user_id, "locales = 'nb, en'").await;
    browser.press("create").await;
    let stripe_id = app.user(user_id).await.stripe_id.unwrap();
    let path = format!("/v1/customers/{stripe_id}");

    set_local(&app, user_id, "locales = NULL, phone = '+47 7'").await;
    let html = browser.press("update").await;

    assert!(html.contains("Sent to Stripe: phone."), "{html}");
    assert!(
        html.contains("Your preferred languages were not cleared in Stripe"),
        "{html}"
    );
    let update = app.stripe.customer_forms(&path).pop().unwrap();
    assert!(
        !update
            .keys()
            .any(|key| key.starts_with("preferred_locales")),
        "{update:?}"
    );
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(
        customer.fields["preferred_locales"],
        serde_json::json!(["nb", "en"])
    );

    // Told again by a bulk run, without a call for it.
    let writes = app.stripe.write_calls();
    let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;
    assert_eq!(
        report["not_sent"][0]["field"], "preferred_locales",
        "{report}"
    );
    assert_eq!(report["unchanged"], 1, "{report}");
    assert_eq!(app.stripe.write_calls(), writes);

    // Cleared in Stripe (as the README says to), the two sides agree again.
    app.stripe
        .edit_customer(&stripe_id, &[("preferred_locales", "")]);
    let html = browser.press("refresh").await;
    assert!(html.contains("Pulled the latest data"), "{html}");
    let report = run_with_map(&app, &["stripe:sync-customers", "--update"], 0).await;
    assert_eq!(report["not_sent"], serde_json::json!([]), "{report}");
    let html = browser.press("update").await;
    assert!(!html.contains("not cleared"), "{html}");
    assert_eq!(app.stripe.write_calls(), writes, "nothing left to send");
}
