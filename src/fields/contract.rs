//! What Stripe's published request types let a customer write take, where a
//! mapped value would break them. Two cases, both from the types Stripe publishes
//! for `POST /v1/customers` and `POST /v1/customers/{id}`:
//!
//! - `shipping` is sent whole, and its `name` is required (an empty string reads
//!   as unset): a shipping detail without a shipping name is not sent. The rest of
//!   the group waits with it; every other field still goes.
//! - `preferred_locales` is a list of strings, and unlike `shipping` or `address`
//!   it is not declared clearable with `''`; a form cannot send an empty list. A
//!   cleared locales column is therefore not pushed: the user is told to clear
//!   the languages in Stripe, after which both sides agree again.
//!
//! A withheld field keeps its base, so it is reported again on every sync until
//! the user fills the name or clears the languages in Stripe.

use serde::Serialize;

use super::map::StripeField;
use super::values::Values;

/// Why a mapped field was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// Shipping details with an empty shipping name.
    ShippingWithoutName,
    /// An empty locales column: the API takes no empty list.
    LocalesNotClearable,
}

impl Withheld {
    /// The field, or group of fields, that was not sent.
    pub fn group(self) -> &'static str {
        match self {
            Withheld::ShippingWithoutName => "shipping",
            Withheld::LocalesNotClearable => "preferred_locales",
        }
    }

    /// Why, in an operator's words (the bulk report, the log).
    pub fn reason(self) -> &'static str {
        match self {
            Withheld::ShippingWithoutName => {
                "shipping not sent: the shipping name column is empty (Stripe requires a name \
                 with any shipping detail)"
            }
            Withheld::LocalesNotClearable => {
                "preferred_locales not cleared: Stripe's API cannot empty the list; clear the \
                 customer's languages in the Stripe Dashboard"
            }
        }
    }

    /// Why, in the settings page's words.
    pub fn page_reason(self) -> &'static str {
        match self {
            Withheld::ShippingWithoutName => {
                "Shipping details were not sent to Stripe: Stripe needs a shipping name with \
                 them, and yours is empty."
            }
            Withheld::LocalesNotClearable => {
                "Your preferred languages were not cleared in Stripe: Stripe's API cannot clear \
                 them, so they stay as Stripe has them until they are cleared in the Stripe \
                 Dashboard."
            }
        }
    }

    /// Whether the field is one this reason holds back.
    pub fn covers(self, field: &StripeField) -> bool {
        match self {
            Withheld::ShippingWithoutName => field.is_shipping(),
            Withheld::LocalesNotClearable => *field == StripeField::PreferredLocales,
        }
    }
}

/// Whether a shipping group of these values (by key, absent as empty) must be
/// withheld: some detail is set, and the name is not.
pub fn shipping_lacks_name<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    let (mut name, mut detail) = (false, false);
    for (key, value) in values {
        if value.is_empty() || !key.starts_with("shipping.") {
            continue;
        }
        match key {
            "shipping.name" => name = true,
            _ => detail = true,
        }
    }
    detail && !name
}

/// The fields a create sends, less what the contract holds back (a create sends
/// only values that are set, so only a shipping group without its name can be).
pub fn withhold_for_create(values: &mut Values) -> Vec<Withheld> {
    let pairs = values.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if !shipping_lacks_name(pairs) {
        return Vec::new();
    }
    values.retain(|key, _| !key.starts_with("shipping."));
    vec![Withheld::ShippingWithoutName]
}
