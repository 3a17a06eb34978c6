//! End-to-end in headless Chromium, driven over WebDriver (chromedriver), against
//! the real server and the Stripe stand-in. Each test saves screenshots of its key
//! states under target/e2e-screenshots/.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::{Needs, PASSWORD, TestApp, skip_without, spawn_app};
use crate::stripe_fake::Fault;

struct Chrome {
    client: Client,
    _driver: tokio::process::Child,
    app: String,
    test: &'static str,
    step: u32,
}

impl Chrome {
    async fn start(app: &TestApp, test: &'static str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver not found: scripts/test installs chromium and chromium-driver");
        let webdriver = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{webdriver}/status")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/e2e-profiles")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let options = json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("a Chromium session");
        Chrome {
            client,
            _driver: driver,
            app: app.address.clone(),
            test,
            step: 0,
        }
    }

    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.app))
            .await
            .unwrap();
    }

    async fn field(&self, name: &str) -> Element {
        self.client
            .find(Locator::Css(&format!("[name=\"{name}\"]")))
            .await
            .unwrap_or_else(|_| panic!("a field named {name}"))
    }

    async fn fill(&self, name: &str, text: &str) {
        let field = self.field(name).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn press_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space()=\"{label}\"]");
        let Ok(button) = self.client.find(Locator::XPath(&xpath)).await else {
            panic!(
                "no button {label:?} on {}:\n{}",
                self.url().await,
                self.text().await
            );
        };
        button.click().await.unwrap();
    }

    async fn follow_link(&self, text: &str) {
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits (up to 10 s) for the page to say `text`, and keeps a screenshot of it.
    async fn sees(&mut self, text: &str, shot: &str) {
        let mut body = String::new();
        for _ in 0..100 {
            // Between a click and the next page there may be no body to read yet.
            if let Ok(element) = self.client.find(Locator::Css("body")).await {
                body = element.text().await.unwrap_or_default();
                if body.contains(text) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.screenshot(shot).await;
        assert!(
            body.contains(text),
            "expected {text:?} on {}:\n{body}",
            self.url().await
        );
    }

    async fn screenshot(&mut self, name: &str) {
        self.step += 1;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(
            dir.join(format!("{}-{:02}-{name}.png", self.test, self.step)),
            png,
        )
        .unwrap();
    }

    async fn register(&mut self, name: &str, email: &str) {
        self.open("/register").await;
        self.fill("name", name).await;
        self.fill("email", email).await;
        self.fill("password", PASSWORD).await;
        self.fill("password_confirmation", PASSWORD).await;
        // Submitting with Enter, as a keyboard user does.
        let enter = char::from(Key::Enter).to_string();
        self.field("password_confirmation")
            .await
            .send_keys(&enter)
            .await
            .unwrap();
        self.sees("Your account is ready.", "registered").await;
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

#[tokio::test]
async fn register_login_profile_create_update_refresh_delete_in_a_browser() {
    if skip_without(Needs::Chromium) {
        return;
    }
    let app = spawn_app().await;
    let mut chrome = Chrome::start(&app, "journey").await;

    chrome.register("Ann Browser", "ann@example.com").await;
    assert!(chrome.text().await.contains("Not linked"));

    chrome.press_button("Create Stripe customer").await;
    chrome.sees("created", "created").await;
    let customer = app.stripe.customers()[0].clone();
    assert_eq!(customer.name.as_deref(), Some("Ann Browser"));

    chrome.follow_link("Profile").await;
    chrome.sees("Save profile", "profile").await;
    chrome.fill("name", "Ann Renamed").await;
    chrome.press_button("Save profile").await;
    chrome.sees("Profile saved.", "profile-saved").await;
    chrome.follow_link("Stripe").await;
    chrome.sees("changed here", "changed-here").await;

    chrome.press_button("Update (push what changed here)").await;
    chrome.sees("Sent to Stripe: name.", "updated").await;
    assert_eq!(
        app.stripe.customer(&customer.id).unwrap().name.as_deref(),
        Some("Ann Renamed")
    );

    app.stripe.set_default_card(&customer.id, "visa", "4242");
    chrome.press_button("Refresh (pull from Stripe)").await;
    chrome.sees("Visa •••• 4242", "refreshed").await;
    assert!(chrome.text().await.contains("just now"));

    chrome.follow_link("Delete customer…").await;
    chrome
        .sees("Delete your Stripe customer?", "confirm-delete")
        .await;
    chrome.press_button("Yes, delete the customer").await;
    chrome.sees("Stripe customer deleted.", "deleted").await;
    assert!(app.stripe.customer(&customer.id).unwrap().deleted);

    chrome.press_button("Sign out (Ann Renamed)").await;
    chrome.sees("You are signed out.", "signed-out").await;
    chrome.fill("email", "ann@example.com").await;
    chrome.fill("password", "not-my-password").await;
    chrome.press_button("Sign in").await;
    chrome
        .sees("Invalid email or password.", "wrong-password")
        .await;
    chrome.fill("password", PASSWORD).await;
    chrome.press_button("Sign in").await;
    chrome.sees("Welcome back, Ann Renamed.", "signed-in").await;
    chrome.close().await;
}

#[tokio::test]
async fn stripe_errors_read_as_words_with_the_remedy_in_a_browser() {
    if skip_without(Needs::Chromium) {
        return;
    }
    let app = spawn_app().await;
    let mut chrome = Chrome::start(&app, "errors").await;
    chrome.register("Ann", "ann@example.com").await;

    app.stripe.push_faults(4, Fault::Status(500));
    chrome.press_button("Create Stripe customer").await;
    chrome
        .sees(
            "Stripe is unavailable, nothing was changed.",
            "stripe-unavailable",
        )
        .await;

    chrome.press_button("Create Stripe customer").await;
    chrome.sees("created", "created-after-outage").await;
    let customer = app.stripe.customers()[0].id.clone();
    app.stripe.delete_customer(&customer);
    chrome.press_button("Refresh (pull from Stripe)").await;
    chrome
        .sees("Customer does not exist in Stripe", "customer-missing")
        .await;
    assert!(chrome.text().await.contains("Missing in Stripe"));

    chrome.press_button("Re-create customer").await;
    chrome.sees("created", "re-created").await;
    assert_eq!(app.stripe.customers().len(), 1);
    chrome.close().await;
}

#[tokio::test]
async fn the_pages_work_by_keyboard_with_labelled_controls_and_visible_focus() {
    if skip_without(Needs::Chromium) {
        return;
    }
    let app = spawn_app().await;
    app.signed_in_user("Ann", "ann@example.com").await;
    let mut chrome = Chrome::start(&app, "keyboard").await;
    chrome.open("/login").await;
    let tab = char::from(Key::Tab).to_string();
    let enter = char::from(Key::Enter).to_string();

    // Tab from the top of the page to the email field, then type and submit.
    let mut reached = false;
    for _ in 0..10 {
        chrome
            .client
            .active_element()
            .await
            .unwrap()
            .send_keys(&tab)
            .await
            .unwrap();
        let focused = chrome.client.active_element().await.unwrap();
        if focused.attr("name").await.unwrap().as_deref() == Some("email") {
            let outline = focused.css_value("outline-style").await.unwrap();
            assert_ne!(outline, "none", "focus is visible");
            reached = true;
            break;
        }
    }
    assert!(reached, "the email field is reachable with Tab");
    chrome.screenshot("focus-on-email").await;
    let focused = chrome.client.active_element().await.unwrap();
    focused.send_keys("ann@example.com").await.unwrap();
    focused.send_keys(&tab).await.unwrap();
    let password = chrome.client.active_element().await.unwrap();
    password.send_keys(PASSWORD).await.unwrap();
    password.send_keys(&enter).await.unwrap();
    chrome
        .sees("Welcome back, Ann.", "keyboard-signed-in")
        .await;

    for path in ["/settings/stripe", "/settings/profile", "/jobs/new"] {
        chrome.open(path).await;
        assert_every_control_is_labelled(&chrome).await;
    }
    chrome.close().await;
}

/// Every visible input, textarea and button has a name a screen reader can read.
async fn assert_every_control_is_labelled(chrome: &Chrome) {
    let url = chrome.url().await;
    let controls = chrome
        .client
        .find_all(Locator::Css("input:not([type=hidden]), textarea, select"))
        .await
        .unwrap();
    for control in controls {
        let id = control.attr("id").await.unwrap().unwrap_or_default();
        let label = chrome
            .client
            .find(Locator::Css(&format!("label[for=\"{id}\"]")))
            .await;
        assert!(
            !id.is_empty() && label.is_ok(),
            "an unlabelled control on {url}"
        );
    }
    for button in chrome
        .client
        .find_all(Locator::Css("button"))
        .await
        .unwrap()
    {
        assert!(
            !button.text().await.unwrap().trim().is_empty(),
            "a button without text on {url}"
        );
    }
}

#[tokio::test]
async fn the_settings_page_reads_on_a_phone_without_sideways_scrolling() {
    if skip_without(Needs::Chromium) {
        return;
    }
    let app = spawn_app().await;
    let mut chrome = Chrome::start(&app, "phone").await;
    chrome
        .register(
            "Ann With A Rather Long Name",
            "ann.with.a.long.address@example.com",
        )
        .await;
    chrome.press_button("Create Stripe customer").await;
    chrome.sees("created", "desktop").await;

    chrome.client.set_window_size(390, 844).await.unwrap();
    chrome.open("/settings/stripe").await;
    chrome.sees("Billing history", "phone").await;

    let widths = chrome
        .client
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, client) = (widths[0].as_f64().unwrap(), widths[1].as_f64().unwrap());
    assert!(
        scroll <= client,
        "the page is {scroll}px wide in a {client}px window"
    );
    chrome.close().await;
}
