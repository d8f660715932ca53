"""The Stripe connector: API requests to ``api.stripe.com`` become ``stripe.<resource>.<verb>`` actions.

The route table ``STRIPE_ROUTES`` is data, tried in order, first match wins. Every path is under ``/v1``;
literal segments that share a position with an id (``/v1/charges/search`` vs ``/v1/charges/{id}``,
``/v1/invoices/create_preview`` vs ``/v1/invoices/{id}``) are listed before the id route. Resources are
singular (``stripe.payment_intent.confirm``). A path id of the action's own resource is the ``id`` param; ids
of parent resources are named after the parent (``/v1/charges/{charge}/refunds`` gives ``charge``), the same
name the request body would use.

Stripe request bodies are form-encoded; ``base.body_fields`` parses them, so every body value is a string.
Amount fields (``amount``, ``amount_to_capture``, ``unit_amount``, ``amount_off``) are turned back into ints
when they are plain digits, so a policy can compare ``amount > 10000``; any other value stays the string sent
(booleans stay ``"true"`` / ``"false"``). Nested form keys (``metadata[plan]``,
``transfer_data[destination]``) are not extracted. A ``Stripe-Account`` header (acting on a connected
account) is reported as the ``stripe_account`` param of a matched action.

Risk levels: reads (including searches and previews) are ``low``; creates and updates ``medium``; moving money
(charges, payment intents, which can confirm on create, captures, refunds, transfers, payouts, paying an
invoice, customer balance adjustments, subscriptions, which bill at once) is ``high``, as are cancelling money
movements, deletes, webhook endpoints, connected accounts and the links and sessions that grant access to
them. Deleting a connected account is ``critical``.

Anything else on the host, including other API versions, is ``stripe.unknown.<method>`` (high risk, denied
unless allowed), with the method and path as params.
"""

from __future__ import annotations

from dataclasses import replace

from trustfence.connectors.base import Action, Connector, RequestView, Route, Router
from trustfence.connectors.protocols import unknown_action, unknown_actions

__all__ = ["AMOUNT_FIELDS", "STRIPE_ROUTES", "StripeConnector"]

AMOUNT_FIELDS = frozenset({"amount", "amount_to_capture", "unit_amount", "amount_off"})
"""Params holding an amount in the currency's smallest unit; converted to int when all digits."""

# Bounded so int() stays cheap and under the interpreter's digit limit; Stripe amounts have at most 8 digits.
_MAX_DIGITS = 18

_MONEY = ("amount", "currency", "customer")
_REFUND = ("amount", "reason")
_SEARCH = ("query",)

STRIPE_ROUTES: tuple[Route, ...] = (
    # --- charges ---
    Route("POST", "/v1/charges", "charge.create", "high", body_params=(*_MONEY, "destination", "capture")),
    Route("GET", "/v1/charges", "charge.list", "low", query_params=("customer", "payment_intent")),
    Route("GET", "/v1/charges/search", "charge.search", "low", query_params=_SEARCH),
    Route("GET", "/v1/charges/{id}", "charge.read", "low"),
    Route("POST", "/v1/charges/{id}", "charge.update", "medium", body_params=("customer",)),
    Route("POST", "/v1/charges/{id}/capture", "charge.capture", "high", body_params=("amount",)),
    # --- refunds (and the older forms nested under a charge) ---
    Route("POST", "/v1/refunds", "refund.create", "high",
          body_params=(*_MONEY, "charge", "payment_intent", "reason")),
    Route("GET", "/v1/refunds", "refund.list", "low", query_params=("charge", "payment_intent")),
    Route("GET", "/v1/refunds/{id}", "refund.read", "low"),
    Route("POST", "/v1/refunds/{id}", "refund.update", "medium"),
    Route("POST", "/v1/refunds/{id}/cancel", "refund.cancel", "high"),
    Route("POST", "/v1/charges/{charge}/refund", "refund.create", "high", body_params=_REFUND),
    Route("POST", "/v1/charges/{charge}/refunds", "refund.create", "high", body_params=_REFUND),
    Route("GET", "/v1/charges/{charge}/refunds", "refund.list", "low"),
    Route("GET", "/v1/charges/{charge}/refunds/{id}", "refund.read", "low"),
    Route("POST", "/v1/charges/{charge}/refunds/{id}", "refund.update", "medium"),
    # --- payment intents (create is high: confirm=true in the same request charges the customer) ---
    Route("POST", "/v1/payment_intents", "payment_intent.create", "high",
          body_params=(*_MONEY, "payment_method", "confirm", "capture_method")),
    Route("GET", "/v1/payment_intents", "payment_intent.list", "low", query_params=("customer",)),
    Route("GET", "/v1/payment_intents/search", "payment_intent.search", "low", query_params=_SEARCH),
    Route("GET", "/v1/payment_intents/{id}", "payment_intent.read", "low"),
    Route("POST", "/v1/payment_intents/{id}", "payment_intent.update", "medium", body_params=_MONEY),
    Route("POST", "/v1/payment_intents/{id}/confirm", "payment_intent.confirm", "high",
          body_params=("payment_method",)),
    Route("POST", "/v1/payment_intents/{id}/capture", "payment_intent.capture", "high",
          body_params=("amount_to_capture",)),
    Route("POST", "/v1/payment_intents/{id}/cancel", "payment_intent.cancel", "high",
          body_params=("cancellation_reason",)),
    Route("POST", "/v1/payment_intents/{id}/increment_authorization",
          "payment_intent.increment_authorization", "high", body_params=("amount",)),
    Route("POST", "/v1/payment_intents/{id}/apply_customer_balance",
          "payment_intent.apply_customer_balance", "high", body_params=("amount", "currency")),
    Route("POST", "/v1/payment_intents/{id}/verify_microdeposits", "payment_intent.verify_microdeposits",
          "medium"),
    # --- setup intents (save a payment method; no money moves) ---
    Route("POST", "/v1/setup_intents", "setup_intent.create", "medium",
          body_params=("customer", "payment_method", "confirm")),
    Route("GET", "/v1/setup_intents", "setup_intent.list", "low",
          query_params=("customer", "payment_method")),
    Route("GET", "/v1/setup_intents/{id}", "setup_intent.read", "low"),
    Route("POST", "/v1/setup_intents/{id}", "setup_intent.update", "medium", body_params=("customer",)),
    Route("POST", "/v1/setup_intents/{id}/confirm", "setup_intent.confirm", "medium",
          body_params=("payment_method",)),
    Route("POST", "/v1/setup_intents/{id}/cancel", "setup_intent.cancel", "medium"),
    Route("POST", "/v1/setup_intents/{id}/verify_microdeposits", "setup_intent.verify_microdeposits",
          "medium"),
    # --- customers, their payment methods and balance ---
    Route("POST", "/v1/customers", "customer.create", "medium"),
    Route("GET", "/v1/customers", "customer.list", "low"),
    Route("GET", "/v1/customers/search", "customer.search", "low", query_params=_SEARCH),
    Route("GET", "/v1/customers/{id}", "customer.read", "low"),
    Route("POST", "/v1/customers/{id}", "customer.update", "medium"),
    Route("DELETE", "/v1/customers/{id}", "customer.delete", "high"),
    Route("DELETE", "/v1/customers/{id}/discount", "customer.update", "medium"),
    Route("GET", "/v1/customers/{customer}/payment_methods", "payment_method.list", "low",
          query_params=("type",)),
    Route("GET", "/v1/customers/{customer}/payment_methods/{id}", "payment_method.read", "low"),
    Route("POST", "/v1/customers/{customer}/balance_transactions", "customer_balance_transaction.create",
          "high", body_params=("amount", "currency")),
    Route("GET", "/v1/customers/{customer}/balance_transactions", "customer_balance_transaction.list", "low"),
    Route("GET", "/v1/customers/{customer}/balance_transactions/{id}", "customer_balance_transaction.read",
          "low"),
    Route("POST", "/v1/customers/{customer}/balance_transactions/{id}", "customer_balance_transaction.update",
          "medium"),
    # --- payment methods ---
    Route("POST", "/v1/payment_methods", "payment_method.create", "medium", body_params=("type", "customer")),
    Route("GET", "/v1/payment_methods", "payment_method.list", "low", query_params=("customer", "type")),
    Route("GET", "/v1/payment_methods/{id}", "payment_method.read", "low"),
    Route("POST", "/v1/payment_methods/{id}", "payment_method.update", "medium"),
    Route("POST", "/v1/payment_methods/{id}/attach", "payment_method.attach", "medium",
          body_params=("customer",)),
    Route("POST", "/v1/payment_methods/{id}/detach", "payment_method.detach", "high"),
    # --- subscriptions (creating or resuming one bills the customer at once) ---
    Route("POST", "/v1/subscriptions", "subscription.create", "high", body_params=("customer", "currency")),
    Route("GET", "/v1/subscriptions", "subscription.list", "low",
          query_params=("customer", "status", "price")),
    Route("GET", "/v1/subscriptions/search", "subscription.search", "low", query_params=_SEARCH),
    Route("GET", "/v1/subscriptions/{id}", "subscription.read", "low"),
    Route("POST", "/v1/subscriptions/{id}", "subscription.update", "medium"),
    Route("DELETE", "/v1/subscriptions/{id}", "subscription.cancel", "high"),
    Route("DELETE", "/v1/subscriptions/{id}/discount", "subscription.update", "medium"),
    Route("POST", "/v1/subscriptions/{id}/resume", "subscription.resume", "high"),
    # --- invoices (literal upcoming, search and create_preview before {id}) ---
    Route("POST", "/v1/invoices", "invoice.create", "medium",
          body_params=("customer", "currency", "subscription")),
    Route("GET", "/v1/invoices", "invoice.list", "low", query_params=("customer", "subscription", "status")),
    Route("GET", "/v1/invoices/search", "invoice.search", "low", query_params=_SEARCH),
    Route("GET", "/v1/invoices/upcoming", "invoice.preview", "low",
          query_params=("customer", "subscription")),
    Route("GET", "/v1/invoices/upcoming/lines", "invoice.preview", "low",
          query_params=("customer", "subscription")),
    Route("POST", "/v1/invoices/create_preview", "invoice.preview", "low",
          body_params=("customer", "subscription")),
    Route("GET", "/v1/invoices/{id}", "invoice.read", "low"),
    Route("GET", "/v1/invoices/{id}/lines", "invoice.read", "low"),
    Route("POST", "/v1/invoices/{id}", "invoice.update", "medium"),
    Route("POST", "/v1/invoices/{id}/add_lines", "invoice.update", "medium"),
    Route("POST", "/v1/invoices/{id}/remove_lines", "invoice.update", "medium"),
    Route("POST", "/v1/invoices/{id}/update_lines", "invoice.update", "medium"),
    Route("DELETE", "/v1/invoices/{id}", "invoice.delete", "high"),
    Route("POST", "/v1/invoices/{id}/finalize", "invoice.finalize", "medium"),
    Route("POST", "/v1/invoices/{id}/pay", "invoice.pay", "high", body_params=("payment_method",)),
    Route("POST", "/v1/invoices/{id}/send", "invoice.send", "medium"),
    Route("POST", "/v1/invoices/{id}/void", "invoice.void", "high"),
    Route("POST", "/v1/invoices/{id}/mark_uncollectible", "invoice.mark_uncollectible", "medium"),
    Route("POST", "/v1/invoiceitems", "invoice_item.create", "medium", body_params=(*_MONEY, "invoice")),
    Route("GET", "/v1/invoiceitems", "invoice_item.list", "low", query_params=("customer", "invoice")),
    Route("GET", "/v1/invoiceitems/{id}", "invoice_item.read", "low"),
    Route("POST", "/v1/invoiceitems/{id}", "invoice_item.update", "medium", body_params=("amount",)),
    Route("DELETE", "/v1/invoiceitems/{id}", "invoice_item.delete", "high"),
    # --- catalogue: products, prices, coupons, promotion codes ---
    Route("POST", "/v1/products", "product.create", "medium"),
    Route("GET", "/v1/products", "product.list", "low"),
    Route("GET", "/v1/products/search", "product.search", "low", query_params=_SEARCH),
    Route("GET", "/v1/products/{id}", "product.read", "low"),
    Route("POST", "/v1/products/{id}", "product.update", "medium"),
    Route("DELETE", "/v1/products/{id}", "product.delete", "high"),
    Route("POST", "/v1/prices", "price.create", "medium", body_params=("currency", "unit_amount", "product")),
    Route("GET", "/v1/prices", "price.list", "low", query_params=("product",)),
    Route("GET", "/v1/prices/search", "price.search", "low", query_params=_SEARCH),
    Route("GET", "/v1/prices/{id}", "price.read", "low"),
    Route("POST", "/v1/prices/{id}", "price.update", "medium"),
    Route("POST", "/v1/coupons", "coupon.create", "medium",
          body_params=("amount_off", "currency", "percent_off", "duration")),
    Route("GET", "/v1/coupons", "coupon.list", "low"),
    Route("GET", "/v1/coupons/{id}", "coupon.read", "low"),
    Route("POST", "/v1/coupons/{id}", "coupon.update", "medium"),
    Route("DELETE", "/v1/coupons/{id}", "coupon.delete", "high"),
    Route("POST", "/v1/promotion_codes", "promotion_code.create", "medium",
          body_params=("coupon", "customer")),
    Route("GET", "/v1/promotion_codes", "promotion_code.list", "low", query_params=("coupon", "customer")),
    Route("GET", "/v1/promotion_codes/{id}", "promotion_code.read", "low"),
    Route("POST", "/v1/promotion_codes/{id}", "promotion_code.update", "medium"),
    # --- hosted payment pages: checkout sessions, payment links, billing portal ---
    Route("POST", "/v1/checkout/sessions", "checkout_session.create", "medium",
          body_params=("customer", "mode", "currency")),
    Route("GET", "/v1/checkout/sessions", "checkout_session.list", "low",
          query_params=("customer", "payment_intent")),
    Route("GET", "/v1/checkout/sessions/{id}", "checkout_session.read", "low"),
    Route("GET", "/v1/checkout/sessions/{id}/line_items", "checkout_session.read", "low"),
    Route("POST", "/v1/checkout/sessions/{id}", "checkout_session.update", "medium"),
    Route("POST", "/v1/checkout/sessions/{id}/expire", "checkout_session.expire", "medium"),
    Route("POST", "/v1/payment_links", "payment_link.create", "medium"),
    Route("GET", "/v1/payment_links", "payment_link.list", "low"),
    Route("GET", "/v1/payment_links/{id}", "payment_link.read", "low"),
    Route("GET", "/v1/payment_links/{id}/line_items", "payment_link.read", "low"),
    Route("POST", "/v1/payment_links/{id}", "payment_link.update", "medium"),
    Route("POST", "/v1/billing_portal/sessions", "billing_portal_session.create", "high",
          body_params=("customer",)),
    # --- transfers and their reversals ---
    Route("POST", "/v1/transfers", "transfer.create", "high",
          body_params=("amount", "currency", "destination", "source_transaction")),
    Route("GET", "/v1/transfers", "transfer.list", "low", query_params=("destination",)),
    Route("GET", "/v1/transfers/{id}", "transfer.read", "low"),
    Route("POST", "/v1/transfers/{id}", "transfer.update", "medium"),
    Route("POST", "/v1/transfers/{transfer}/reversals", "transfer_reversal.create", "high",
          body_params=("amount",)),
    Route("GET", "/v1/transfers/{transfer}/reversals", "transfer_reversal.list", "low"),
    Route("GET", "/v1/transfers/{transfer}/reversals/{id}", "transfer_reversal.read", "low"),
    Route("POST", "/v1/transfers/{transfer}/reversals/{id}", "transfer_reversal.update", "medium"),
    # --- payouts ---
    Route("POST", "/v1/payouts", "payout.create", "high",
          body_params=("amount", "currency", "destination", "method")),
    Route("GET", "/v1/payouts", "payout.list", "low", query_params=("destination", "status")),
    Route("GET", "/v1/payouts/{id}", "payout.read", "low"),
    Route("POST", "/v1/payouts/{id}", "payout.update", "medium"),
    Route("POST", "/v1/payouts/{id}/cancel", "payout.cancel", "high"),
    Route("POST", "/v1/payouts/{id}/reverse", "payout.reverse", "high"),
    # --- balance (balance/history is the older name of balance_transactions) ---
    Route("GET", "/v1/balance", "balance.read", "low"),
    Route("GET", "/v1/balance_transactions", "balance_transaction.list", "low",
          query_params=("type", "payout", "source", "currency")),
    Route("GET", "/v1/balance_transactions/{id}", "balance_transaction.read", "low"),
    Route("GET", "/v1/balance/history", "balance_transaction.list", "low",
          query_params=("type", "payout", "source", "currency")),
    Route("GET", "/v1/balance/history/{id}", "balance_transaction.read", "low"),
    # --- disputes (closing one concedes the funds, irreversibly) ---
    Route("GET", "/v1/disputes", "dispute.list", "low", query_params=("charge", "payment_intent")),
    Route("GET", "/v1/disputes/{id}", "dispute.read", "low"),
    Route("POST", "/v1/disputes/{id}", "dispute.update", "medium", body_params=("submit",)),
    Route("POST", "/v1/disputes/{id}/close", "dispute.close", "high"),
    # --- connected accounts and what grants access to them ---
    Route("POST", "/v1/accounts", "account.create", "high", body_params=("type", "country")),
    Route("GET", "/v1/accounts", "account.list", "low"),
    Route("GET", "/v1/account", "account.read", "low"),
    Route("GET", "/v1/accounts/{id}", "account.read", "low"),
    Route("POST", "/v1/accounts/{id}", "account.update", "high"),
    Route("DELETE", "/v1/accounts/{id}", "account.delete", "critical"),
    Route("POST", "/v1/accounts/{id}/reject", "account.reject", "high", body_params=("reason",)),
    Route("POST", "/v1/account_links", "account_link.create", "high", body_params=("account", "type")),
    Route("POST", "/v1/account_sessions", "account_session.create", "high", body_params=("account",)),
    Route("POST", "/v1/accounts/{account}/login_links", "login_link.create", "high"),
    Route("POST", "/v1/accounts/{account}/external_accounts", "external_account.create", "high"),
    Route("GET", "/v1/accounts/{account}/external_accounts", "external_account.list", "low"),
    Route("GET", "/v1/accounts/{account}/external_accounts/{id}", "external_account.read", "low"),
    Route("POST", "/v1/accounts/{account}/external_accounts/{id}", "external_account.update", "high"),
    Route("DELETE", "/v1/accounts/{account}/external_accounts/{id}", "external_account.delete", "high"),
    # --- webhook endpoints (where Stripe sends account events: a data channel) ---
    Route("POST", "/v1/webhook_endpoints", "webhook_endpoint.create", "high",
          body_params=("url", "connect")),
    Route("GET", "/v1/webhook_endpoints", "webhook_endpoint.list", "low"),
    Route("GET", "/v1/webhook_endpoints/{id}", "webhook_endpoint.read", "low"),
    Route("POST", "/v1/webhook_endpoints/{id}", "webhook_endpoint.update", "high",
          body_params=("url", "disabled")),
    Route("DELETE", "/v1/webhook_endpoints/{id}", "webhook_endpoint.delete", "high"),
    # --- events ---
    Route("GET", "/v1/events", "event.list", "low", query_params=("type",)),
    Route("GET", "/v1/events/{id}", "event.read", "low"),
)

_ROUTER = Router("stripe", STRIPE_ROUTES)


def _amounts_as_ints(params: dict[str, object]) -> dict[str, object]:
    """``params``, changed in place: each amount field that is a plain digit string becomes an int.

    Form bodies carry every value as text; ``"1500"`` becomes ``1500`` so numeric policy conditions work.
    Anything else (``"-5"``, ``"12.5"``, ``""``, ``"１５"``, an overlong string) is left as sent, so a numeric
    condition on it fails closed rather than reading a value the request did not state.
    """
    for name in AMOUNT_FIELDS:
        value = params.get(name)
        # ASCII digits only (str.isdigit alone takes other scripts' digits), at most _MAX_DIGITS of them
        if type(value) is str and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
            params[name] = int(value)
    return params


class StripeConnector(Connector):
    """``stripe.<resource>.<verb>`` for the Stripe API; unmatched requests are ``stripe.unknown.<method>``."""

    type_name = "stripe"
    namespace = "stripe"
    default_hosts: tuple[str, ...] = ("api.stripe.com",)

    @property
    def actions(self) -> frozenset[str]:
        return _ROUTER.actions | unknown_actions("stripe")

    def parse(self, view: RequestView) -> Action:
        target = view if view.method.isupper() else replace(view, method=view.method.upper())
        found = _ROUTER.find(target)
        if found is None:
            return unknown_action(self.name, "stripe", view)
        params = _amounts_as_ints(found.params)  # find's params are the caller's to change
        account = view.headers.get("stripe-account")
        if account:
            params["stripe_account"] = account
        return Action(found.name, self.name, found.risk, params, found.unavailable)
