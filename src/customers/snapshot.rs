//! What the settings page shows of the Stripe side, as last pulled.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stripe_shared::Customer;
use stripe_types::Expandable;

use crate::fields::{self, Values};

/// Stored as JSON in `users.stripe_snapshot`, with the time it was taken beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Snapshot {
    Present(Box<CustomerSnapshot>),
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
    /// The id of the default payment method (`invoice_settings`); absent in
    /// snapshots taken before it was kept, which then cannot vouch for `card`.
    #[serde(default)]
    pub default_payment_method: Option<String>,
    pub card: Option<Card>,
    pub metadata_user_id: Option<String>,
    pub delinquent: Option<bool>,
    /// Every syncable field the customer holds (`crate::fields`), name and email
    /// included; absent in snapshots taken before they were kept, and from a
    /// payload that did not say them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Values>,
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
            default_payment_method: customer
                .invoice_settings
                .as_ref()
                .and_then(|settings| settings.default_payment_method.as_ref())
                .map(|method| method.id().as_str().to_string()),
            card: default_card(customer).map(|card| Card {
                brand: card.brand.to_string(),
                last4: card.last4.to_string(),
            }),
            metadata_user_id: customer
                .metadata
                .as_ref()
                .and_then(|m| m.get("user_id").cloned()),
            delinquent: customer.delinquent,
            fields: Some(fields::values::of_customer(customer)),
        }
    }
}

/// A customer as a list read keeps it ([`crate::stripe::StripeGateway::every_customer`]).
impl crate::stripe::Dated for CustomerSnapshot {
    fn list_id(&self) -> &str {
        &self.id
    }

    fn created_at(&self) -> i64 {
        self.created
    }
}

impl CustomerSnapshot {
    /// What a webhook or listed event's payload says of a customer, when it holds
    /// every field a snapshot keeps; `None` for a lean or foreign payload, which
    /// the caller then retrieves. The card is never in a payload (the default
    /// payment method is only an id there): it is left out, for the caller to
    /// carry over or pull.
    pub fn from_payload(object: &Value) -> Option<Self> {
        #[derive(Deserialize)]
        struct Payload {
            id: String,
            created: i64,
            livemode: bool,
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            email: Option<String>,
            #[serde(default)]
            metadata: Option<serde_json::Map<String, Value>>,
            #[serde(default)]
            delinquent: Option<bool>,
            invoice_settings: Option<InvoiceSettings>,
        }
        #[derive(Deserialize)]
        struct InvoiceSettings {
            #[serde(default)]
            default_payment_method: Option<Value>,
        }
        let payload = Payload::deserialize(object).ok()?;
        // Without invoice_settings the payload cannot say which card is the default.
        let settings = payload.invoice_settings?;
        let default_payment_method = match settings.default_payment_method {
            None | Some(Value::Null) => None,
            // An id, or an object someone expanded.
            Some(method) => Some(
                method
                    .as_str()
                    .or_else(|| method.get("id")?.as_str())?
                    .to_string(),
            ),
        };
        Some(CustomerSnapshot {
            id: payload.id,
            name: payload.name,
            email: payload.email,
            created: payload.created,
            livemode: payload.livemode,
            default_payment_method,
            card: None,
            metadata_user_id: payload
                .metadata
                .as_ref()
                .and_then(|m| m.get("user_id")?.as_str().map(str::to_string)),
            delinquent: payload.delinquent,
            fields: fields::values::of_payload(object),
        })
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
