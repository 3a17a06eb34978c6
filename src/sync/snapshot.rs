//! What the settings page shows of the Stripe side, as last pulled.

use serde::{Deserialize, Serialize};
use stripe_shared::Customer;
use stripe_types::Expandable;

/// Stored as JSON in `users.stripe_snapshot`, with the time it was taken beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Snapshot {
    Present(CustomerSnapshot),
    /// Stripe said the linked customer is deleted or does not exist.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSnapshot {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created: i64,
    pub livemode: bool,
    pub card: Option<Card>,
    pub metadata_user_id: Option<String>,
    pub delinquent: Option<bool>,
}

/// The default payment method as Cashier keeps it: `pm_type` and `pm_last_four`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
}

impl Snapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot always serializes")
    }

    /// A snapshot that no longer parses (an older format) is treated as absent:
    /// Refresh takes a new one.
    pub fn from_json(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }
}

impl From<&Customer> for CustomerSnapshot {
    fn from(customer: &Customer) -> Self {
        CustomerSnapshot {
            id: customer.id.as_str().to_string(),
            name: customer.name.clone(),
            email: customer.email.clone(),
            created: customer.created,
            livemode: customer.livemode,
            card: default_card(customer).map(|card| Card {
                brand: card.brand.to_string(),
                last4: card.last4.to_string(),
            }),
            metadata_user_id: customer
                .metadata
                .as_ref()
                .and_then(|m| m.get("user_id").cloned()),
            delinquent: customer.delinquent,
        }
    }
}

/// The brand and last four of the customer's default card, when the default
/// payment method is an expanded card; none otherwise, as Cashier does.
pub(crate) fn default_card(customer: &Customer) -> Option<CardRef<'_>> {
    let default = customer
        .invoice_settings
        .as_ref()?
        .default_payment_method
        .as_ref()?;
    let Expandable::Object(method) = default else {
        return None;
    };
    let card = method.card.as_ref()?;
    Some(CardRef {
        brand: &card.brand,
        last4: &card.last4,
    })
}

/// A card as Stripe's customer object holds it, before it is copied anywhere.
#[derive(Clone, Copy)]
pub(crate) struct CardRef<'a> {
    pub brand: &'a str,
    pub last4: &'a str,
}
