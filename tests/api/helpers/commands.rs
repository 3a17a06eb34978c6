//! The `stripe-sync` binary, run as an operator runs it, and what it prints.

use std::collections::HashSet;

use serde_json::Value;

use super::TestApp;

pub fn json_report(output: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "stdout is one JSON object: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs the command with `--json`, expects success, and returns its report.
pub async fn run_ok(app: &TestApp, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = app.run(&all).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        stderr(&output)
    );
    json_report(&output)
}

/// Links one user through the command, as an operator would.
pub async fn link(app: &TestApp, id: i64) {
    let user = id.to_string();
    app.run(&["stripe:sync-customers", "--create", "--user", &user])
        .await;
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Every user has exactly one live customer naming them, and is linked to it.
pub async fn assert_one_linked_customer_per_user(app: &TestApp, ids: &[i64]) {
    let customers = app.stripe.customers();
    let named: Vec<String> = customers
        .iter()
        .filter_map(|c| c.metadata.get("user_id").cloned())
        .collect();
    let distinct: HashSet<&String> = named.iter().collect();
    assert_eq!(distinct.len(), named.len(), "a user has two customers");
    assert_eq!(customers.len(), ids.len(), "customers at Stripe = users");
    for id in ids {
        let user = app.user(*id).await;
        let customer = customers
            .iter()
            .find(|c| c.metadata.get("user_id") == Some(&id.to_string()))
            .unwrap_or_else(|| panic!("user {id} has no customer"));
        assert_eq!(
            user.stripe_id.as_deref(),
            Some(customer.id.as_str()),
            "user {id} unlinked"
        );
    }
}
