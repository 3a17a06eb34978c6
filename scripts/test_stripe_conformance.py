"""The conformance check fails on what Stripe's published types refuse.

Run by scripts/test before the suite: `python -m unittest scripts/test_stripe_conformance.py`.
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import stripe_conformance as conformance  # noqa: E402


def errors(method: str, path: str, form: str) -> list[str]:
    request = {"method": method, "path": path, "query": "", "body": ""}
    request["body" if method == "POST" else "query"] = form
    _, found = conformance.check_request(request, TABLE, CHECKER)
    return found


TABLE = conformance.routes()
CHECKER = conformance.Checker()


class PublishedTypes(unittest.TestCase):
    def test_what_the_app_sends_fits(self):
        update = (
            "name=Ann&phone=&address[line1]=Gate%201&address[city]=Oslo&address[line2]="
            "&preferred_locales[0]=nb&preferred_locales[1]=en&metadata[team]=red"
            "&shipping[name]=Ann&shipping[phone]=&shipping[address][city]=Oslo"
            "&expand[0]=invoice_settings.default_payment_method"
        )
        self.assertEqual(errors("POST", "/v1/customers/cus_1", update), [])
        self.assertEqual(errors("POST", "/v1/customers", "email=a%40b.c&shipping=&address="), [])
        self.assertEqual(errors("GET", "/v1/customers", "limit=100&starting_after=cus_1"), [])
        self.assertEqual(errors("GET", "/v1/events", "created[gte]=1700000000&limit=100"), [])
        self.assertEqual(errors("DELETE", "/v1/customers/cus_1", ""), [])

    def test_a_wrong_key_fails(self):
        found = errors("POST", "/v1/customers/cus_1", "nmae=Ann")
        self.assertEqual(found, ["nmae: not a parameter of CustomerUpdateParams"])
        nested = errors("POST", "/v1/customers", "address[town]=Oslo")
        self.assertEqual(nested, ["address[town]: not a parameter of CustomerCreateParamsAddress"])

    def test_an_empty_list_sent_as_an_empty_string_fails(self):
        found = errors("POST", "/v1/customers/cus_1", "preferred_locales=")
        self.assertEqual(len(found), 1, found)
        self.assertIn("preferred_locales: a list is published", found[0])

    def test_a_shipping_group_without_its_name_fails(self):
        empty = errors("POST", "/v1/customers", "shipping[name]=&shipping[address][city]=Oslo")
        self.assertEqual(empty, ["shipping[name]: required, and sent empty (Stripe reads '' as unset)"])
        missing = errors("POST", "/v1/customers/cus_1", "shipping[address][city]=Oslo")
        self.assertEqual(missing, ["shipping[name]: required by CustomerUpdateParamsShipping, not sent"])

    def test_a_value_outside_an_enum_or_of_the_wrong_type_fails(self):
        mode = errors("POST", "/v1/checkout/sessions", "mode=rent&success_url=https%3A%2F%2Fx")
        self.assertTrue(any(e.startswith("mode: 'rent' is not one of") for e in mode), mode)
        limit = errors("GET", "/v1/customers", "limit=many")
        self.assertEqual(limit, ["limit: 'many' is not an integer"])
        disabled = errors("POST", "/v1/webhook_endpoints/we_1", "disabled=yes")
        self.assertEqual(disabled, ["disabled: 'yes' is not a boolean"])

    def test_an_unknown_path_fails(self):
        found = errors("POST", "/v1/customerz", "name=Ann")
        self.assertEqual(found, ["POST /v1/customerz: not a method and path the checked types cover"])

    def test_the_command_fails_on_a_misfit_and_on_a_missing_kind(self):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as log:
            good = {"method": "GET", "path": "/v1/customers/cus_1", "query": "", "body": ""}
            log.write(json.dumps(good) + "\n")
        said = io.StringIO()
        try:
            with contextlib.redirect_stdout(said):
                self.assertEqual(conformance.main([log.name]), 0)
                self.assertEqual(conformance.main([log.name, "--require-all-kinds"]), 1)
            self.assertIn("FAIL: the suite made no request of these kinds: POST /v1/customers,", said.getvalue())
            with open(log.name, "a", encoding="utf-8") as more:
                bad = {"method": "POST", "path": "/v1/customers", "query": "", "body": "x=1"}
                more.write(json.dumps(bad) + "\n")
            with contextlib.redirect_stdout(said):
                self.assertEqual(conformance.main([log.name]), 1)
            self.assertIn("FAIL: POST /v1/customers: x: not a parameter of CustomerCreateParams", said.getvalue())
        finally:
            os.unlink(log.name)


if __name__ == "__main__":
    unittest.main()
