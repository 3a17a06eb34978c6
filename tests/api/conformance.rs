//! The same service against localstripe, a third-party stateful Stripe emulator
//! (`scripts/test` starts it and sets LOCALSTRIPE_URL).

use stripe_sync::customers::{CreateOutcome, CustomerError, DeleteOutcome, Push};

use crate::helpers::{Needs, StripeSetup, TestApp, skip_without, spawn_app_with, unique_email};

fn localstripe_url() -> String {
    std::env::var("LOCALSTRIPE_URL").expect(
        "LOCALSTRIPE_URL is not set: run the suite with scripts/test, which starts localstripe",
    )
}

async fn app_on_localstripe() -> TestApp {
    spawn_app_with(StripeSetup::At(localstripe_url())).await
}

/// A signed-up user whose customer the service created on localstripe.
async fn linked_user_on_localstripe(tag: &str) -> (TestApp, i64, String) {
    let app = app_on_localstripe().await;
    let (_, user_id) = app.signed_in_user("Ann", &unique_email(tag)).await;
    let created = app
        .customers
        .create_customer(user_id)
        .await
        .expect("created");
    let stripe_id = created.stripe_id().to_string();
    (app, user_id, stripe_id)
}

async fn localstripe(
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> serde_json::Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", localstripe_url()))
        .basic_auth(crate::helpers::TEST_STRIPE_SECRET, Some(""))
        .form(form)
        .send()
        .await
        .expect("localstripe answers");
    response.json().await.unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn create_retrieve_update_and_delete_round_trip_on_localstripe() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let app = app_on_localstripe().await;
    let email = unique_email("round-trip");
    let (_, user_id) = app.signed_in_user("Ann", &email).await;

    let created = app
        .customers
        .create_customer(user_id)
        .await
        .expect("created");
    assert!(!created.relinked, "expected a new customer");
    let stripe_id = created.stripe_id;
    let customer = localstripe(
        reqwest::Method::GET,
        &format!("/v1/customers/{stripe_id}"),
        &[],
    )
    .await;
    assert_eq!(customer["email"], email.as_str());
    assert_eq!(customer["metadata"]["user_id"], user_id.to_string());

    stripe_sync::db::users::update_profile(
        &app.db,
        user_id,
        "Ann Renamed",
        &email,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    app.customers
        .update_customer(user_id, Push::Always)
        .await
        .expect("updated");
    let customer = localstripe(
        reqwest::Method::GET,
        &format!("/v1/customers/{stripe_id}"),
        &[],
    )
    .await;
    assert_eq!(customer["name"], "Ann Renamed");

    app.customers
        .refresh_customer(user_id)
        .await
        .expect("refreshed");
    assert_eq!(app.user(user_id).await.pm_type, None);

    assert_eq!(
        app.customers.delete_customer(user_id).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(app.user(user_id).await.stripe_id, None);
}

#[tokio::test]
async fn a_customer_deleted_on_localstripe_is_reported_as_missing() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let (app, user_id, stripe_id) = linked_user_on_localstripe("deleted").await;
    // localstripe answers a retrieve after delete with 404 and no error code;
    // real Stripe answers 200 with deleted: true. Both must read as "missing".
    localstripe(
        reqwest::Method::DELETE,
        &format!("/v1/customers/{stripe_id}"),
        &[],
    )
    .await;

    let refresh = app.customers.refresh_customer(user_id).await;
    let update = app.customers.update_customer(user_id, Push::Always).await;

    assert!(
        matches!(refresh, Err(CustomerError::CustomerMissingInStripe { .. })),
        "{refresh:?}"
    );
    assert!(
        matches!(update, Err(CustomerError::CustomerMissingInStripe { .. })),
        "{update:?}"
    );
    let recreated = app
        .customers
        .recreate_customer(user_id)
        .await
        .expect("re-created");
    assert_ne!(recreated.stripe_id(), stripe_id);
}

#[tokio::test]
async fn the_default_card_attached_on_localstripe_reaches_pm_type_and_pm_last_four() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let (app, user_id, stripe_id) = linked_user_on_localstripe("card").await;
    let pm = localstripe(
        reqwest::Method::POST,
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", stripe_id.as_str())],
    )
    .await;
    let pm_id = pm["id"]
        .as_str()
        .expect("attached payment method")
        .to_string();
    localstripe(
        reqwest::Method::POST,
        &format!("/v1/customers/{stripe_id}"),
        &[("invoice_settings[default_payment_method]", pm_id.as_str())],
    )
    .await;

    app.customers
        .refresh_customer(user_id)
        .await
        .expect("refreshed");

    let user = app.user(user_id).await;
    assert_eq!(user.pm_type.as_deref(), Some("visa"));
    assert_eq!(user.pm_last_four.as_deref(), Some("4242"));
}

#[tokio::test]
async fn an_interrupted_create_is_relinked_on_localstripe_which_ignores_idempotency_keys() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let app = app_on_localstripe().await;
    let email = unique_email("crash");
    let (_, user_id) = app.signed_in_user("Ann", &email).await;
    // The crash: a customer exists at Stripe, the key and parameters were saved, the
    // claim lapsed and stripe_id was never written.
    let lapsed = stripe_sync::db::users::unix_ms(time::OffsetDateTime::now_utc()) - 3_600_000;
    let params = serde_json::json!({"name": "Ann", "email": email}).to_string();
    let lease = stripe_sync::db::users::Lease {
        holder: "a-process-that-crashed",
        now_ms: lapsed,
        expires_ms: lapsed,
    };
    stripe_sync::db::users::claim_create(&app.db, user_id, "crashed-attempt", &params, lease)
        .await
        .unwrap()
        .expect("claimed");
    let user_id_text = user_id.to_string();
    let orphan = localstripe(
        reqwest::Method::POST,
        "/v1/customers",
        &[
            ("name", "Ann"),
            ("email", email.as_str()),
            ("metadata[user_id]", user_id_text.as_str()),
        ],
    )
    .await;

    let outcome = app
        .customers
        .create_customer(user_id)
        .await
        .expect("resumed");

    assert_eq!(
        outcome,
        CreateOutcome {
            stripe_id: orphan["id"].as_str().unwrap().to_string(),
            relinked: true,
            not_sent: Vec::new(),
        }
    );
    let list = localstripe(
        reqwest::Method::GET,
        &format!("/v1/customers?email={email}"),
        &[],
    )
    .await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "still one customer"
    );
}

#[tokio::test]
async fn concurrent_creates_make_one_customer_on_localstripe_by_the_database_guard_alone() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let app = app_on_localstripe().await;
    let email = unique_email("concurrent");
    let (_, user_id) = app.signed_in_user("Ann", &email).await;

    let attempts = (0..20).map(|_| {
        let sync = app.customers.clone();
        tokio::spawn(async move { sync.create_customer(user_id).await })
    });
    let mut created = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(CustomerError::CreateInProgress | CustomerError::AlreadyHasCustomer { .. }) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }

    assert_eq!(created, 1);
    let list = localstripe(
        reqwest::Method::GET,
        &format!("/v1/customers?email={email}"),
        &[],
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn localstripe_deliveries_update_and_unlink_the_user_through_signed_webhooks() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let secret = "whsec_test_localstripe";
    let app = crate::helpers::spawn_app_customized(StripeSetup::At(localstripe_url()), |config| {
        config.webhook_secret = Some(secret.to_string().into());
    })
    .await;
    let hook = format!("/_config/webhooks/{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/stripe/webhook", app.address);
    localstripe(
        reqwest::Method::POST,
        &hook,
        &[
            ("url", url.as_str()),
            ("secret", secret),
            ("events[]", "customer.updated"),
            ("events[]", "customer.deleted"),
        ],
    )
    .await;
    let (_, user_id) = app.signed_in_user("Ann", &unique_email("webhook")).await;
    let stripe_id = app
        .customers
        .create_customer(user_id)
        .await
        .unwrap()
        .stripe_id()
        .to_string();

    localstripe(
        reqwest::Method::POST,
        &format!("/v1/customers/{stripe_id}"),
        &[("name", "Renamed At Stripe")],
    )
    .await;

    let renamed = TestApp::eventually(|| async {
        app.user(user_id)
            .await
            .stripe_snapshot
            .is_some_and(|s| s.contains("Renamed At Stripe"))
    })
    .await;
    assert!(renamed, "customer.updated reached the user");

    localstripe(
        reqwest::Method::DELETE,
        &format!("/v1/customers/{stripe_id}"),
        &[],
    )
    .await;

    let unlinked =
        TestApp::eventually(|| async { app.user(user_id).await.stripe_id.is_none() }).await;
    assert!(unlinked, "customer.deleted unlinked the user");
}

#[tokio::test]
async fn replay_reads_localstripes_events_api_and_applies_a_card_and_a_deletion_once() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let (app, ann, ann_customer) = linked_user_on_localstripe("replay-card").await;
    let (_, bob) = app
        .signed_in_user("Bob", &unique_email("replay-gone"))
        .await;
    let bob_customer = app.customers.create_customer(bob).await.expect("created");
    let bob_customer = bob_customer.stripe_id().to_string();
    let pm = localstripe(
        reqwest::Method::POST,
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", ann_customer.as_str())],
    )
    .await;
    let pm_id = pm["id"].as_str().expect("attached").to_string();
    localstripe(
        reqwest::Method::POST,
        &format!("/v1/customers/{ann_customer}"),
        &[("invoice_settings[default_payment_method]", pm_id.as_str())],
    )
    .await;
    localstripe(
        reqwest::Method::DELETE,
        &format!("/v1/customers/{bob_customer}"),
        &[],
    )
    .await;
    let replay = || async {
        let output = app
            .command(&["stripe:replay-events", "--since", "10m", "--json"])
            .env("STRIPE_API_BASE", localstripe_url())
            .output()
            .await
            .expect("binary runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            crate::helpers::commands::stderr(&output)
        );
        crate::helpers::commands::json_report(&output)
    };

    let first = replay().await;

    let ann_row = app.user(ann).await;
    assert_eq!(ann_row.pm_type.as_deref(), Some("visa"), "{first}");
    assert_eq!(ann_row.pm_last_four.as_deref(), Some("4242"));
    assert_eq!(app.user(bob).await.stripe_id, None, "{first}");

    // localstripe is shared by the whole run: other tests' events appear in the
    // window too, about customers this database has never seen.
    let ann_after = app.user(ann).await;
    let second = replay().await;

    assert_eq!(second["applied"], 0, "{second}");
    assert_eq!(second["failed"], 0);
    let ann_again = app.user(ann).await;
    assert_eq!(ann_again.stripe_snapshot, ann_after.stripe_snapshot);
    assert_eq!(
        ann_again.stripe_event_created,
        ann_after.stripe_event_created
    );
}

#[tokio::test]
async fn mapped_fields_are_created_updated_and_cleared_on_localstripe() {
    if skip_without(Needs::Localstripe) {
        return;
    }
    let plain = app_on_localstripe().await;
    let text = "VARCHAR(255) NULL";
    let columns = [
        ("phone", text),
        ("line1", text),
        ("city", text),
        ("team", text),
    ];
    plain.add_user_columns(&columns).await;
    let map = "phone=phone,address.line1=line1,address.city=city,metadata.team=team";
    let app = plain
        .another_instance(|config| {
            config.customer_fields = stripe_sync::fields::FieldMap::parse(map).unwrap();
        })
        .await;
    plain.stop();
    let (_, user_id) = app.signed_in_user("Ann", &unique_email("fields")).await;
    app.execute(&format!(
        "UPDATE users SET phone = '+47 22 00 00 00', line1 = 'Gate 1', city = 'Oslo', \
         team = 'red' WHERE id = {user_id}"
    ))
    .await;

    let created = app
        .customers
        .create_customer(user_id)
        .await
        .expect("created");
    let path = format!("/v1/customers/{}", created.stripe_id());
    let customer = localstripe(reqwest::Method::GET, &path, &[]).await;
    assert_eq!(customer["phone"], "+47 22 00 00 00", "{customer}");
    assert_eq!(customer["address"]["city"], "Oslo", "{customer}");
    assert_eq!(customer["address"]["line1"], "Gate 1", "{customer}");
    assert_eq!(customer["metadata"]["team"], "red", "{customer}");
    assert_eq!(customer["metadata"]["user_id"], user_id.to_string());

    app.execute(&format!(
        "UPDATE users SET city = 'Bergen', phone = NULL WHERE id = {user_id}"
    ))
    .await;
    let outcome = app
        .customers
        .update_customer(user_id, Push::IfChanged)
        .await
        .expect("updated");

    assert_eq!(outcome.pushed, ["phone", "address.city"]);
    let customer = localstripe(reqwest::Method::GET, &path, &[]).await;
    assert_eq!(customer["address"]["city"], "Bergen", "{customer}");
    assert_eq!(
        customer["address"]["line1"], "Gate 1",
        "the address went whole"
    );
    assert!(
        customer["phone"].is_null() || customer["phone"] == "",
        "cleared: {customer}"
    );
    assert_eq!(customer["metadata"]["team"], "red");
    let again = app
        .customers
        .update_customer(user_id, Push::IfChanged)
        .await
        .expect("nothing to do");
    assert!(again.pushed.is_empty(), "{again:?}");
    assert!(
        again.pulled.is_empty(),
        "localstripe's answer agrees: {again:?}"
    );
}
