//! The form a customer create or update sends: the synced fields, by their keys
//! (`address.city`), in Stripe's shape. An empty value clears the field, as
//! Stripe reads an empty string. An address is sent whole (the parts that did
//! not change as Stripe holds them), since Stripe replaces it whole. What the
//! published types do not take is never written here: an empty locales list (no
//! `''` for it), a shipping group without its name (the merge withholds both
//! before they reach the form; see `crate::fields::contract`).

use std::collections::BTreeMap;

use serde::Serialize;
use stripe_client_core::{RequestBuilder, StripeMethod, StripeRequest};
use stripe_shared::Customer;

use crate::fields::Values;
use crate::fields::map::AddressPart;

/// A value, or `""` to clear it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Cleared<T> {
    Clear(&'static str),
    Set(T),
}

#[derive(Debug, Serialize)]
struct ShippingForm {
    name: String,
    phone: String,
    address: BTreeMap<&'static str, String>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct CustomerForm {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_locales: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<Cleared<BTreeMap<&'static str, String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping: Option<Cleared<ShippingForm>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
    expand: Vec<String>,
}

impl CustomerForm {
    /// `changes` (field key → value to send), completed from `current` (what
    /// Stripe holds) where Stripe takes a group whole.
    pub(super) fn new(changes: &Values, current: &Values, expand: &str) -> Self {
        let value = |key: &str| {
            changes
                .get(key)
                .or_else(|| current.get(key))
                .cloned()
                .unwrap_or_default()
        };
        let changes_any = |prefix: &str| changes.keys().any(|key| key.starts_with(prefix));
        let address = |prefix: &str| -> BTreeMap<&'static str, String> {
            AddressPart::ALL
                .iter()
                .map(|part| (part.name(), value(&format!("{prefix}{}", part.name()))))
                .collect()
        };
        let mut form = CustomerForm {
            name: changes.get("name").cloned(),
            email: changes.get("email").cloned(),
            phone: changes.get("phone").cloned(),
            description: changes.get("description").cloned(),
            expand: vec![expand.to_string()],
            ..CustomerForm::default()
        };
        form.preferred_locales = changes
            .get("preferred_locales")
            .map(|list| crate::fields::values::locales(list))
            .filter(|list| !list.is_empty());
        if changes_any("address.") {
            let parts = address("address.");
            form.address = Some(match parts.values().all(String::is_empty) {
                true => Cleared::Clear(""),
                false => Cleared::Set(parts),
            });
        }
        if changes_any("shipping.") {
            let shipping = ShippingForm {
                name: value("shipping.name"),
                phone: value("shipping.phone"),
                address: address("shipping.address."),
            };
            let empty = shipping.name.is_empty()
                && shipping.phone.is_empty()
                && shipping.address.values().all(String::is_empty);
            form.shipping = match (empty, shipping.name.is_empty()) {
                (true, _) => Some(Cleared::Clear("")),
                (false, false) => Some(Cleared::Set(shipping)),
                // Never half: the merge withholds such a group before it gets here.
                (false, true) => None,
            };
        }
        for (key, value) in changes {
            if let Some(meta) = key.strip_prefix("metadata.") {
                form.metadata.insert(meta.to_string(), value.clone());
            }
        }
        form
    }

    pub(super) fn with_metadata(mut self, key: &str, value: String) -> Self {
        self.metadata.insert(key.to_string(), value);
        self
    }
}

/// `POST /v1/customers` or `/v1/customers/{id}` with a [`CustomerForm`].
pub(super) struct WriteCustomer {
    pub(super) path: String,
    pub(super) form: CustomerForm,
}

impl StripeRequest for WriteCustomer {
    type Output = Customer;

    fn build(&self) -> RequestBuilder {
        RequestBuilder::new(StripeMethod::Post, self.path.as_str()).form(&self.form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn encoded(form: &CustomerForm) -> String {
        let body = RequestBuilder::new(StripeMethod::Post, "/customers")
            .form(form)
            .body
            .unwrap();
        percent_decode(&body)
    }

    fn percent_decode(text: &str) -> String {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text).unwrap();
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    #[test]
    fn only_the_changed_fields_are_sent_and_an_address_goes_whole() {
        let changes = values(&[("address.city", "Bergen"), ("phone", "")]);
        let current = values(&[
            ("address.line1", "Gate 1"),
            ("address.city", "Oslo"),
            ("name", "Ann"),
        ]);
        let body = encoded(&CustomerForm::new(&changes, &current, "x"));
        assert!(body.contains("address[city]=Bergen"), "{body}");
        assert!(body.contains("address[line1]=Gate 1"), "{body}");
        assert!(body.contains("address[line2]=&"), "{body}");
        assert!(body.contains("phone=&"), "{body}");
        assert!(!body.contains("name="), "{body}");
        assert!(!body.contains("email="), "{body}");
    }

    #[test]
    fn locales_metadata_and_clearing_a_whole_group() {
        let changes = values(&[
            ("preferred_locales", "nb,en"),
            ("metadata.team", "red"),
            ("shipping.name", ""),
        ]);
        let body = encoded(&CustomerForm::new(&changes, &Values::new(), "x"));
        assert!(
            body.contains("preferred_locales[0]=nb&preferred_locales[1]=en"),
            "{body}"
        );
        assert!(body.contains("metadata[team]=red"), "{body}");
        assert!(body.contains("shipping=&"), "{body}");
        let cleared = encoded(&CustomerForm::new(
            &values(&[("preferred_locales", "")]),
            &Values::new(),
            "x",
        ));
        assert!(
            !cleared.contains("preferred_locales"),
            "no '' for a list: {cleared}"
        );
    }
}
