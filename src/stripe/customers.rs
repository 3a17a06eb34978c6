//! Customers: create, retrieve, update, delete, find by `metadata.user_id`, list.

use stripe_client_core::IdempotencyKey;
use stripe_core::customer::{
    DeleteCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned,
};
use stripe_shared::{Customer, CustomerId};

use super::customer_form::{CustomerForm, WriteCustomer};
use super::segments::{Dated, Page, PageCall, Segment, Segments};
use super::{CustomerLookup, CustomerParams, FailureKind, Missing, StripeFailure, StripeGateway};
use crate::fields::Values;
use crate::fields::map::USER_ID_KEY;

/// Expanded on every customer we read so the default card's brand and last four
/// come back in the same call.
pub(super) const DEFAULT_PM: &str = "invoice_settings.default_payment_method";

/// Where a read of every customer starts (2011-01-01, before Stripe's first
/// customers). Stripe lists newest first only, so the oldest customer would cost a
/// search; the years before it are cut into segments that answer empty, one call
/// each, side by side with the rest.
pub const FIRST_CUSTOMERS: i64 = 1_293_840_000;

impl StripeGateway {
    /// Creates a customer with `metadata.user_id`, under the caller's idempotency key.
    pub async fn create_customer(
        &self,
        user_id: i64,
        params: &CustomerParams,
        idempotency_key: &str,
    ) -> Result<Customer, StripeFailure> {
        let key = IdempotencyKey::new(idempotency_key).map_err(|e| StripeFailure {
            kind: FailureKind::Rejected { message: None },
            operation: "create customer",
            status: None,
            request_id: None,
            detail: e.to_string(),
            retryable: false,
        })?;
        let form = CustomerForm::new(&params.values(), &Values::new(), DEFAULT_PM)
            .with_metadata(USER_ID_KEY, user_id.to_string());
        let request = WriteCustomer {
            path: "/customers".into(),
            form,
        };
        self.send("create customer", Some(key), &request).await
    }

    pub async fn retrieve_customer(&self, id: &str) -> Result<CustomerLookup, StripeFailure> {
        let request = RetrieveCustomer::new(CustomerId::from(id)).expand([DEFAULT_PM.to_string()]);
        match self.send("retrieve customer", None, &request).await {
            Ok(RetrieveCustomerReturned::Customer(customer)) => {
                Ok(CustomerLookup::Found(Box::new(customer)))
            }
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => Ok(CustomerLookup::Gone),
            Err(failure) if failure.kind == FailureKind::NotFound => Ok(CustomerLookup::Gone),
            Err(failure) => Err(failure),
        }
    }

    /// Whether a customer the list did not show is gone, and how sure that is:
    /// `Deleted` is Stripe saying so (`deleted: true`), proof that this key's account
    /// had it; `NotFound` (404) is also what a key of another account sees.
    pub async fn missing_customer(&self, id: &str) -> Result<Option<Missing>, StripeFailure> {
        let request = RetrieveCustomer::new(CustomerId::from(id));
        match self.send("retrieve customer", None, &request).await {
            Ok(RetrieveCustomerReturned::Customer(_)) => Ok(None),
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => Ok(Some(Missing::Deleted)),
            Err(failure) if failure.kind == FailureKind::NotFound => Ok(Some(Missing::NotFound)),
            Err(failure) => Err(failure),
        }
    }

    /// Sends `changes` (field key → value; empty clears it), completing an
    /// address or shipping group from `current`, what Stripe holds.
    pub async fn update_customer(
        &self,
        id: &str,
        changes: &Values,
        current: &Values,
    ) -> Result<Customer, StripeFailure> {
        let request = WriteCustomer {
            path: format!("/customers/{id}"),
            form: CustomerForm::new(changes, current, DEFAULT_PM),
        };
        self.send(
            "update customer",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }

    pub async fn delete_customer(&self, id: &str) -> Result<(), StripeFailure> {
        let request = DeleteCustomer::new(CustomerId::from(id));
        self.send(
            "delete customer",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
        .map(|_| ())
    }

    /// Finds the customer an earlier, interrupted attempt created for this user, by
    /// listing customers with the email it was created with (the Search API is not
    /// available on every stand-in, and lists are strongly consistent).
    pub async fn find_customer_for_user(
        &self,
        user_id: i64,
        email: &str,
    ) -> Result<Option<Customer>, StripeFailure> {
        let request = ListCustomer::new()
            .email(email)
            .limit(100)
            .expand([format!("data.{DEFAULT_PM}")]);
        let list = self.send("list customers", None, &request).await?;
        let wanted = user_id.to_string();
        Ok(list.data.into_iter().find(|customer| {
            customer
                .metadata
                .as_ref()
                .and_then(|m| m.get("user_id"))
                .is_some_and(|id| *id == wanted)
        }))
    }
    /// One page of the customers created in the segment's range, newest first,
    /// after its cursor.
    pub async fn list_customers(&self, segment: &Segment) -> Result<Page<Customer>, StripeFailure> {
        let created = stripe_types::RangeQueryTs::Bounds(stripe_types::RangeBoundsTs {
            gte: Some(segment.gte),
            lt: Some(segment.lt),
            ..Default::default()
        });
        let mut request = ListCustomer::new()
            .created(created)
            .limit(100)
            .expand([format!("data.{DEFAULT_PM}")]);
        if let Some(after) = &segment.after {
            request = request.starting_after(after.as_str());
        }
        let list = self.send("list customers", None, &request).await?;
        Ok((list.data, list.has_more))
    }

    /// Every customer of the account, read in segments side by side (see
    /// [`Segments`]), `expected` of them at least (the linked users), each made
    /// `lean` as its page arrives: a page waiting for its turn holds what the
    /// caller keeps of a customer, not Stripe's whole object with its expanded
    /// payment method. The range ends a day past our clock, in case Stripe's
    /// runs ahead.
    pub fn every_customer<T, F>(&self, expected: u64, lean: F) -> Segments<T>
    where
        T: Dated + Send + 'static,
        F: Fn(Customer) -> T + Copy + Send + Sync + 'static,
    {
        let until = crate::clock::now().unix_timestamp() + 86_400;
        let stripe = self.clone();
        let fetch = move |segment: Segment| -> PageCall<T> {
            let stripe = stripe.clone();
            Box::pin(async move {
                let (page, more) = stripe.list_customers(&segment).await?;
                Ok((page.into_iter().map(lean).collect(), more))
            })
        };
        let pace = self.pace("GET /v1/customers");
        Segments::new(FIRST_CUSTOMERS, until, pace, Box::new(fetch)).expecting(expected)
    }
}
