"""The Stripe connector: route actions, risks and params, int amounts, unreadable bodies, unknowns."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlencode

import pytest
from trustfence.connectors.base import RequestView, Route
from trustfence.connectors.stripe import STRIPE_ROUTES, StripeConnector

SC = StripeConnector("stripe", StripeConnector.default_hosts)
FORM = "application/x-www-form-urlencoded"


def view(method: str, target: str, body: dict[str, str] | None = None, *, raw: bytes | None = None,
         ctype: str | None = FORM, headers: dict[str, str] | None = None,
         complete: bool = True) -> RequestView:
    """A request as the Stripe SDKs send it: ``target`` may carry a query string, ``body`` is form-encoded."""
    path, _, qs = target.partition("?")
    data = raw if raw is not None else (b"" if body is None else urlencode(body).encode())
    hdrs = {"content-type": ctype} if ctype else {}
    hdrs.update(headers or {})
    return RequestView(method=method, scheme="https", host="api.stripe.com", port=443, path=path,
                       query=tuple(parse_qsl(qs, keep_blank_values=True)), headers=hdrs, body=data,
                       body_complete=complete)


Row = tuple[str, str, dict[str, str] | None, str, str, dict[str, object]]

# (method, path?query, form body, expected action, risk, params): at least one row per route.
GOLDEN: list[Row] = [
    # charges
    ("POST", "/v1/charges",
     {"amount": "2000", "currency": "usd", "customer": "cus_1", "destination": "acct_1", "capture": "false",
      "description": "order 7"},
     "stripe.charge.create", "high",
     {"amount": 2000, "currency": "usd", "customer": "cus_1", "destination": "acct_1", "capture": "false"}),
    ("GET", "/v1/charges?customer=cus_1&limit=3", None, "stripe.charge.list", "low", {"customer": "cus_1"}),
    ("GET", "/v1/charges/search?query=amount%3E1000", None,
     "stripe.charge.search", "low", {"query": "amount>1000"}),
    ("GET", "/v1/charges/ch_1", None, "stripe.charge.read", "low", {"id": "ch_1"}),
    ("POST", "/v1/charges/ch_1", {"customer": "cus_1", "description": "d"},
     "stripe.charge.update", "medium", {"id": "ch_1", "customer": "cus_1"}),
    ("POST", "/v1/charges/ch_1/capture", {"amount": "500"},
     "stripe.charge.capture", "high", {"id": "ch_1", "amount": 500}),
    # refunds
    ("POST", "/v1/refunds", {"payment_intent": "pi_1", "amount": "1000", "reason": "duplicate"},
     "stripe.refund.create", "high", {"payment_intent": "pi_1", "amount": 1000, "reason": "duplicate"}),
    ("POST", "/v1/refunds", {"charge": "ch_1"}, "stripe.refund.create", "high", {"charge": "ch_1"}),
    ("POST", "/v1/refunds",
     {"customer": "cus_1", "currency": "usd", "amount": "300", "origin": "customer_balance"},
     "stripe.refund.create", "high", {"customer": "cus_1", "currency": "usd", "amount": 300}),
    ("GET", "/v1/refunds?charge=ch_1", None, "stripe.refund.list", "low", {"charge": "ch_1"}),
    ("GET", "/v1/refunds/re_1", None, "stripe.refund.read", "low", {"id": "re_1"}),
    ("POST", "/v1/refunds/re_1", {"metadata[k]": "v"}, "stripe.refund.update", "medium", {"id": "re_1"}),
    ("POST", "/v1/refunds/re_1/cancel", None, "stripe.refund.cancel", "high", {"id": "re_1"}),
    ("POST", "/v1/charges/ch_1/refund", {"amount": "100"},
     "stripe.refund.create", "high", {"charge": "ch_1", "amount": 100}),
    ("POST", "/v1/charges/ch_1/refunds", {"amount": "100", "reason": "fraudulent"},
     "stripe.refund.create", "high", {"charge": "ch_1", "amount": 100, "reason": "fraudulent"}),
    ("GET", "/v1/charges/ch_1/refunds", None, "stripe.refund.list", "low", {"charge": "ch_1"}),
    ("GET", "/v1/charges/ch_1/refunds/re_1", None,
     "stripe.refund.read", "low", {"charge": "ch_1", "id": "re_1"}),
    ("POST", "/v1/charges/ch_1/refunds/re_1", {"metadata[a]": "b"},
     "stripe.refund.update", "medium", {"charge": "ch_1", "id": "re_1"}),
    # payment intents
    ("POST", "/v1/payment_intents",
     {"amount": "5000", "currency": "eur", "customer": "cus_1", "payment_method": "pm_1", "confirm": "true",
      "capture_method": "manual", "automatic_payment_methods[enabled]": "true"},
     "stripe.payment_intent.create", "high",
     {"amount": 5000, "currency": "eur", "customer": "cus_1", "payment_method": "pm_1", "confirm": "true",
      "capture_method": "manual"}),
    ("GET", "/v1/payment_intents?customer=cus_1", None,
     "stripe.payment_intent.list", "low", {"customer": "cus_1"}),
    ("GET", "/v1/payment_intents/search?query=status%3A%27succeeded%27", None,
     "stripe.payment_intent.search", "low", {"query": "status:'succeeded'"}),
    ("GET", "/v1/payment_intents/pi_1", None, "stripe.payment_intent.read", "low", {"id": "pi_1"}),
    ("POST", "/v1/payment_intents/pi_1", {"amount": "7000", "currency": "usd"},
     "stripe.payment_intent.update", "medium", {"id": "pi_1", "amount": 7000, "currency": "usd"}),
    ("POST", "/v1/payment_intents/pi_1/confirm",
     {"payment_method": "pm_card_visa", "return_url": "https://x.test"},
     "stripe.payment_intent.confirm", "high", {"id": "pi_1", "payment_method": "pm_card_visa"}),
    ("POST", "/v1/payment_intents/pi_1/capture", {"amount_to_capture": "4000"},
     "stripe.payment_intent.capture", "high", {"id": "pi_1", "amount_to_capture": 4000}),
    ("POST", "/v1/payment_intents/pi_1/cancel", {"cancellation_reason": "abandoned"},
     "stripe.payment_intent.cancel", "high", {"id": "pi_1", "cancellation_reason": "abandoned"}),
    ("POST", "/v1/payment_intents/pi_1/increment_authorization", {"amount": "9000"},
     "stripe.payment_intent.increment_authorization", "high", {"id": "pi_1", "amount": 9000}),
    ("POST", "/v1/payment_intents/pi_1/apply_customer_balance", {"amount": "100", "currency": "usd"},
     "stripe.payment_intent.apply_customer_balance", "high",
     {"id": "pi_1", "amount": 100, "currency": "usd"}),
    ("POST", "/v1/payment_intents/pi_1/verify_microdeposits", {"amounts[0]": "32", "amounts[1]": "45"},
     "stripe.payment_intent.verify_microdeposits", "medium", {"id": "pi_1"}),
    # setup intents
    ("POST", "/v1/setup_intents",
     {"customer": "cus_1", "payment_method": "pm_1", "confirm": "true", "usage": "off_session"},
     "stripe.setup_intent.create", "medium",
     {"customer": "cus_1", "payment_method": "pm_1", "confirm": "true"}),
    ("GET", "/v1/setup_intents?customer=cus_1&payment_method=pm_1", None,
     "stripe.setup_intent.list", "low", {"customer": "cus_1", "payment_method": "pm_1"}),
    ("GET", "/v1/setup_intents/seti_1", None, "stripe.setup_intent.read", "low", {"id": "seti_1"}),
    ("POST", "/v1/setup_intents/seti_1", {"customer": "cus_2"},
     "stripe.setup_intent.update", "medium", {"id": "seti_1", "customer": "cus_2"}),
    ("POST", "/v1/setup_intents/seti_1/confirm", {"payment_method": "pm_1"},
     "stripe.setup_intent.confirm", "medium", {"id": "seti_1", "payment_method": "pm_1"}),
    ("POST", "/v1/setup_intents/seti_1/cancel", None,
     "stripe.setup_intent.cancel", "medium", {"id": "seti_1"}),
    ("POST", "/v1/setup_intents/seti_1/verify_microdeposits", {"descriptor_code": "SM11AA"},
     "stripe.setup_intent.verify_microdeposits", "medium", {"id": "seti_1"}),
    # customers, their payment methods and balance
    ("POST", "/v1/customers", {"email": "a@b.test", "name": "A"}, "stripe.customer.create", "medium", {}),
    ("GET", "/v1/customers?email=a%40b.test", None, "stripe.customer.list", "low", {}),
    ("GET", "/v1/customers/search?query=email%3A%27a%40b.test%27", None,
     "stripe.customer.search", "low", {"query": "email:'a@b.test'"}),
    ("GET", "/v1/customers/cus_1", None, "stripe.customer.read", "low", {"id": "cus_1"}),
    ("POST", "/v1/customers/cus_1", {"name": "B"}, "stripe.customer.update", "medium", {"id": "cus_1"}),
    ("DELETE", "/v1/customers/cus_1", None, "stripe.customer.delete", "high", {"id": "cus_1"}),
    ("DELETE", "/v1/customers/cus_1/discount", None, "stripe.customer.update", "medium", {"id": "cus_1"}),
    ("GET", "/v1/customers/cus_1/payment_methods?type=card", None,
     "stripe.payment_method.list", "low", {"customer": "cus_1", "type": "card"}),
    ("GET", "/v1/customers/cus_1/payment_methods/pm_1", None,
     "stripe.payment_method.read", "low", {"customer": "cus_1", "id": "pm_1"}),
    ("POST", "/v1/customers/cus_1/balance_transactions",
     {"amount": "2500", "currency": "usd", "description": "c"},
     "stripe.customer_balance_transaction.create", "high",
     {"customer": "cus_1", "amount": 2500, "currency": "usd"}),
    ("GET", "/v1/customers/cus_1/balance_transactions", None,
     "stripe.customer_balance_transaction.list", "low", {"customer": "cus_1"}),
    ("GET", "/v1/customers/cus_1/balance_transactions/cbtxn_1", None,
     "stripe.customer_balance_transaction.read", "low", {"customer": "cus_1", "id": "cbtxn_1"}),
    ("POST", "/v1/customers/cus_1/balance_transactions/cbtxn_1", {"description": "d"},
     "stripe.customer_balance_transaction.update", "medium", {"customer": "cus_1", "id": "cbtxn_1"}),
    # payment methods
    ("POST", "/v1/payment_methods", {"type": "card", "card[token]": "tok_visa"},
     "stripe.payment_method.create", "medium", {"type": "card"}),
    ("GET", "/v1/payment_methods?customer=cus_1&type=card", None,
     "stripe.payment_method.list", "low", {"customer": "cus_1", "type": "card"}),
    ("GET", "/v1/payment_methods/pm_1", None, "stripe.payment_method.read", "low", {"id": "pm_1"}),
    ("POST", "/v1/payment_methods/pm_1", {"billing_details[name]": "A"},
     "stripe.payment_method.update", "medium", {"id": "pm_1"}),
    ("POST", "/v1/payment_methods/pm_1/attach", {"customer": "cus_1"},
     "stripe.payment_method.attach", "medium", {"id": "pm_1", "customer": "cus_1"}),
    ("POST", "/v1/payment_methods/pm_1/detach", None, "stripe.payment_method.detach", "high", {"id": "pm_1"}),
    # subscriptions
    ("POST", "/v1/subscriptions", {"customer": "cus_1", "items[0][price]": "price_1", "currency": "usd"},
     "stripe.subscription.create", "high", {"customer": "cus_1", "currency": "usd"}),
    ("GET", "/v1/subscriptions?customer=cus_1&status=active&price=price_1", None,
     "stripe.subscription.list", "low", {"customer": "cus_1", "status": "active", "price": "price_1"}),
    ("GET", "/v1/subscriptions/search?query=status%3A%27active%27", None,
     "stripe.subscription.search", "low", {"query": "status:'active'"}),
    ("GET", "/v1/subscriptions/sub_1", None, "stripe.subscription.read", "low", {"id": "sub_1"}),
    ("POST", "/v1/subscriptions/sub_1", {"cancel_at_period_end": "true"},
     "stripe.subscription.update", "medium", {"id": "sub_1"}),
    ("DELETE", "/v1/subscriptions/sub_1", None, "stripe.subscription.cancel", "high", {"id": "sub_1"}),
    ("DELETE", "/v1/subscriptions/sub_1/discount", None,
     "stripe.subscription.update", "medium", {"id": "sub_1"}),
    ("POST", "/v1/subscriptions/sub_1/resume", {"billing_cycle_anchor": "now"},
     "stripe.subscription.resume", "high", {"id": "sub_1"}),
    # invoices and invoice items
    ("POST", "/v1/invoices",
     {"customer": "cus_1", "currency": "usd", "subscription": "sub_1", "auto_advance": "false"},
     "stripe.invoice.create", "medium", {"customer": "cus_1", "currency": "usd", "subscription": "sub_1"}),
    ("GET", "/v1/invoices?customer=cus_1&subscription=sub_1&status=open", None,
     "stripe.invoice.list", "low", {"customer": "cus_1", "subscription": "sub_1", "status": "open"}),
    ("GET", "/v1/invoices/search?query=total%3E1000", None,
     "stripe.invoice.search", "low", {"query": "total>1000"}),
    ("GET", "/v1/invoices/upcoming?customer=cus_1", None,
     "stripe.invoice.preview", "low", {"customer": "cus_1"}),
    ("GET", "/v1/invoices/upcoming/lines?customer=cus_1&subscription=sub_1", None,
     "stripe.invoice.preview", "low", {"customer": "cus_1", "subscription": "sub_1"}),
    ("POST", "/v1/invoices/create_preview", {"customer": "cus_1", "subscription": "sub_1"},
     "stripe.invoice.preview", "low", {"customer": "cus_1", "subscription": "sub_1"}),
    ("GET", "/v1/invoices/in_1", None, "stripe.invoice.read", "low", {"id": "in_1"}),
    ("GET", "/v1/invoices/in_1/lines", None, "stripe.invoice.read", "low", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1", {"description": "d"}, "stripe.invoice.update", "medium", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1/add_lines", {"lines[0][price]": "price_1"},
     "stripe.invoice.update", "medium", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1/remove_lines", {"lines[0][id]": "il_1"},
     "stripe.invoice.update", "medium", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1/update_lines", {"lines[0][id]": "il_1"},
     "stripe.invoice.update", "medium", {"id": "in_1"}),
    ("DELETE", "/v1/invoices/in_1", None, "stripe.invoice.delete", "high", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1/finalize", {"auto_advance": "true"},
     "stripe.invoice.finalize", "medium", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1/pay", {"payment_method": "pm_1"},
     "stripe.invoice.pay", "high", {"id": "in_1", "payment_method": "pm_1"}),
    ("POST", "/v1/invoices/in_1/send", None, "stripe.invoice.send", "medium", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1/void", None, "stripe.invoice.void", "high", {"id": "in_1"}),
    ("POST", "/v1/invoices/in_1/mark_uncollectible", None,
     "stripe.invoice.mark_uncollectible", "medium", {"id": "in_1"}),
    ("POST", "/v1/invoiceitems",
     {"customer": "cus_1", "amount": "1000", "currency": "usd", "invoice": "in_1"},
     "stripe.invoice_item.create", "medium",
     {"customer": "cus_1", "amount": 1000, "currency": "usd", "invoice": "in_1"}),
    ("GET", "/v1/invoiceitems?customer=cus_1&invoice=in_1", None,
     "stripe.invoice_item.list", "low", {"customer": "cus_1", "invoice": "in_1"}),
    ("GET", "/v1/invoiceitems/ii_1", None, "stripe.invoice_item.read", "low", {"id": "ii_1"}),
    ("POST", "/v1/invoiceitems/ii_1", {"amount": "1200"},
     "stripe.invoice_item.update", "medium", {"id": "ii_1", "amount": 1200}),
    ("DELETE", "/v1/invoiceitems/ii_1", None, "stripe.invoice_item.delete", "high", {"id": "ii_1"}),
    # products, prices, coupons, promotion codes
    ("POST", "/v1/products", {"name": "Gold"}, "stripe.product.create", "medium", {}),
    ("GET", "/v1/products", None, "stripe.product.list", "low", {}),
    ("GET", "/v1/products/search?query=active%3A%27true%27", None,
     "stripe.product.search", "low", {"query": "active:'true'"}),
    ("GET", "/v1/products/prod_1", None, "stripe.product.read", "low", {"id": "prod_1"}),
    ("POST", "/v1/products/prod_1", {"name": "Platinum"},
     "stripe.product.update", "medium", {"id": "prod_1"}),
    ("DELETE", "/v1/products/prod_1", None, "stripe.product.delete", "high", {"id": "prod_1"}),
    ("POST", "/v1/prices",
     {"currency": "usd", "unit_amount": "1999", "product": "prod_1", "recurring[interval]": "month"},
     "stripe.price.create", "medium", {"currency": "usd", "unit_amount": 1999, "product": "prod_1"}),
    ("GET", "/v1/prices?product=prod_1", None, "stripe.price.list", "low", {"product": "prod_1"}),
    ("GET", "/v1/prices/search?query=currency%3A%27usd%27", None,
     "stripe.price.search", "low", {"query": "currency:'usd'"}),
    ("GET", "/v1/prices/price_1", None, "stripe.price.read", "low", {"id": "price_1"}),
    ("POST", "/v1/prices/price_1", {"active": "false"}, "stripe.price.update", "medium", {"id": "price_1"}),
    ("POST", "/v1/coupons", {"amount_off": "500", "currency": "usd", "duration": "once"},
     "stripe.coupon.create", "medium", {"amount_off": 500, "currency": "usd", "duration": "once"}),
    ("POST", "/v1/coupons", {"percent_off": "25.5", "duration": "forever"},
     "stripe.coupon.create", "medium", {"percent_off": "25.5", "duration": "forever"}),
    ("GET", "/v1/coupons", None, "stripe.coupon.list", "low", {}),
    ("GET", "/v1/coupons/SUMMER25", None, "stripe.coupon.read", "low", {"id": "SUMMER25"}),
    ("POST", "/v1/coupons/SUMMER25", {"name": "n"}, "stripe.coupon.update", "medium", {"id": "SUMMER25"}),
    ("DELETE", "/v1/coupons/SUMMER25", None, "stripe.coupon.delete", "high", {"id": "SUMMER25"}),
    ("POST", "/v1/promotion_codes", {"coupon": "SUMMER25", "customer": "cus_1", "code": "VIP"},
     "stripe.promotion_code.create", "medium", {"coupon": "SUMMER25", "customer": "cus_1"}),
    ("GET", "/v1/promotion_codes?coupon=SUMMER25", None,
     "stripe.promotion_code.list", "low", {"coupon": "SUMMER25"}),
    ("GET", "/v1/promotion_codes/promo_1", None, "stripe.promotion_code.read", "low", {"id": "promo_1"}),
    ("POST", "/v1/promotion_codes/promo_1", {"active": "false"},
     "stripe.promotion_code.update", "medium", {"id": "promo_1"}),
    # checkout sessions, payment links, billing portal
    ("POST", "/v1/checkout/sessions",
     {"mode": "payment", "customer": "cus_1", "currency": "usd", "line_items[0][price]": "price_1",
      "success_url": "https://x.test"},
     "stripe.checkout_session.create", "medium", {"mode": "payment", "customer": "cus_1", "currency": "usd"}),
    ("GET", "/v1/checkout/sessions?payment_intent=pi_1", None,
     "stripe.checkout_session.list", "low", {"payment_intent": "pi_1"}),
    ("GET", "/v1/checkout/sessions/cs_test_1", None,
     "stripe.checkout_session.read", "low", {"id": "cs_test_1"}),
    ("GET", "/v1/checkout/sessions/cs_test_1/line_items", None,
     "stripe.checkout_session.read", "low", {"id": "cs_test_1"}),
    ("POST", "/v1/checkout/sessions/cs_test_1", {"metadata[a]": "b"},
     "stripe.checkout_session.update", "medium", {"id": "cs_test_1"}),
    ("POST", "/v1/checkout/sessions/cs_test_1/expire", None,
     "stripe.checkout_session.expire", "medium", {"id": "cs_test_1"}),
    ("POST", "/v1/payment_links", {"line_items[0][price]": "price_1", "line_items[0][quantity]": "1"},
     "stripe.payment_link.create", "medium", {}),
    ("GET", "/v1/payment_links", None, "stripe.payment_link.list", "low", {}),
    ("GET", "/v1/payment_links/plink_1", None, "stripe.payment_link.read", "low", {"id": "plink_1"}),
    ("GET", "/v1/payment_links/plink_1/line_items", None,
     "stripe.payment_link.read", "low", {"id": "plink_1"}),
    ("POST", "/v1/payment_links/plink_1", {"active": "false"},
     "stripe.payment_link.update", "medium", {"id": "plink_1"}),
    ("POST", "/v1/billing_portal/sessions", {"customer": "cus_1", "return_url": "https://x.test"},
     "stripe.billing_portal_session.create", "high", {"customer": "cus_1"}),
    # transfers and reversals
    ("POST", "/v1/transfers",
     {"amount": "10000", "currency": "usd", "destination": "acct_1", "source_transaction": "ch_1"},
     "stripe.transfer.create", "high",
     {"amount": 10000, "currency": "usd", "destination": "acct_1", "source_transaction": "ch_1"}),
    ("GET", "/v1/transfers?destination=acct_1", None,
     "stripe.transfer.list", "low", {"destination": "acct_1"}),
    ("GET", "/v1/transfers/tr_1", None, "stripe.transfer.read", "low", {"id": "tr_1"}),
    ("POST", "/v1/transfers/tr_1", {"description": "d"}, "stripe.transfer.update", "medium", {"id": "tr_1"}),
    ("POST", "/v1/transfers/tr_1/reversals", {"amount": "500", "refund_application_fee": "true"},
     "stripe.transfer_reversal.create", "high", {"transfer": "tr_1", "amount": 500}),
    ("GET", "/v1/transfers/tr_1/reversals", None,
     "stripe.transfer_reversal.list", "low", {"transfer": "tr_1"}),
    ("GET", "/v1/transfers/tr_1/reversals/trr_1", None,
     "stripe.transfer_reversal.read", "low", {"transfer": "tr_1", "id": "trr_1"}),
    ("POST", "/v1/transfers/tr_1/reversals/trr_1", {"metadata[a]": "b"},
     "stripe.transfer_reversal.update", "medium", {"transfer": "tr_1", "id": "trr_1"}),
    # payouts
    ("POST", "/v1/payouts",
     {"amount": "25000", "currency": "usd", "destination": "ba_1", "method": "instant"},
     "stripe.payout.create", "high",
     {"amount": 25000, "currency": "usd", "destination": "ba_1", "method": "instant"}),
    ("GET", "/v1/payouts?status=paid&destination=ba_1", None,
     "stripe.payout.list", "low", {"status": "paid", "destination": "ba_1"}),
    ("GET", "/v1/payouts/po_1", None, "stripe.payout.read", "low", {"id": "po_1"}),
    ("POST", "/v1/payouts/po_1", {"metadata[a]": "b"}, "stripe.payout.update", "medium", {"id": "po_1"}),
    ("POST", "/v1/payouts/po_1/cancel", None, "stripe.payout.cancel", "high", {"id": "po_1"}),
    ("POST", "/v1/payouts/po_1/reverse", None, "stripe.payout.reverse", "high", {"id": "po_1"}),
    # balance
    ("GET", "/v1/balance", None, "stripe.balance.read", "low", {}),
    ("GET", "/v1/balance_transactions?payout=po_1&type=charge", None,
     "stripe.balance_transaction.list", "low", {"payout": "po_1", "type": "charge"}),
    ("GET", "/v1/balance_transactions/txn_1", None,
     "stripe.balance_transaction.read", "low", {"id": "txn_1"}),
    ("GET", "/v1/balance/history?currency=usd", None,
     "stripe.balance_transaction.list", "low", {"currency": "usd"}),
    ("GET", "/v1/balance/history/txn_1", None, "stripe.balance_transaction.read", "low", {"id": "txn_1"}),
    # disputes
    ("GET", "/v1/disputes?charge=ch_1", None, "stripe.dispute.list", "low", {"charge": "ch_1"}),
    ("GET", "/v1/disputes/dp_1", None, "stripe.dispute.read", "low", {"id": "dp_1"}),
    ("POST", "/v1/disputes/dp_1", {"evidence[customer_name]": "A", "submit": "true"},
     "stripe.dispute.update", "medium", {"id": "dp_1", "submit": "true"}),
    ("POST", "/v1/disputes/dp_1/close", None, "stripe.dispute.close", "high", {"id": "dp_1"}),
    # connected accounts
    ("POST", "/v1/accounts", {"type": "express", "country": "US", "email": "a@b.test"},
     "stripe.account.create", "high", {"type": "express", "country": "US"}),
    ("GET", "/v1/accounts", None, "stripe.account.list", "low", {}),
    ("GET", "/v1/account", None, "stripe.account.read", "low", {}),
    ("GET", "/v1/accounts/acct_1", None, "stripe.account.read", "low", {"id": "acct_1"}),
    ("POST", "/v1/accounts/acct_1", {"business_profile[url]": "https://x.test"},
     "stripe.account.update", "high", {"id": "acct_1"}),
    ("DELETE", "/v1/accounts/acct_1", None, "stripe.account.delete", "critical", {"id": "acct_1"}),
    ("POST", "/v1/accounts/acct_1/reject", {"reason": "fraud"},
     "stripe.account.reject", "high", {"id": "acct_1", "reason": "fraud"}),
    ("POST", "/v1/account_links",
     {"account": "acct_1", "type": "account_onboarding", "refresh_url": "https://x.test/r",
      "return_url": "https://x.test/d"},
     "stripe.account_link.create", "high", {"account": "acct_1", "type": "account_onboarding"}),
    ("POST", "/v1/account_sessions", {"account": "acct_1", "components[payments][enabled]": "true"},
     "stripe.account_session.create", "high", {"account": "acct_1"}),
    ("POST", "/v1/accounts/acct_1/login_links", None,
     "stripe.login_link.create", "high", {"account": "acct_1"}),
    ("POST", "/v1/accounts/acct_1/external_accounts", {"external_account": "btok_1"},
     "stripe.external_account.create", "high", {"account": "acct_1"}),
    ("GET", "/v1/accounts/acct_1/external_accounts", None,
     "stripe.external_account.list", "low", {"account": "acct_1"}),
    ("GET", "/v1/accounts/acct_1/external_accounts/ba_1", None,
     "stripe.external_account.read", "low", {"account": "acct_1", "id": "ba_1"}),
    ("POST", "/v1/accounts/acct_1/external_accounts/ba_1", {"default_for_currency": "true"},
     "stripe.external_account.update", "high", {"account": "acct_1", "id": "ba_1"}),
    ("DELETE", "/v1/accounts/acct_1/external_accounts/ba_1", None,
     "stripe.external_account.delete", "high", {"account": "acct_1", "id": "ba_1"}),
    # webhook endpoints
    ("POST", "/v1/webhook_endpoints",
     {"url": "https://hooks.example.test/s", "enabled_events[0]": "charge.succeeded", "connect": "true"},
     "stripe.webhook_endpoint.create", "high", {"url": "https://hooks.example.test/s", "connect": "true"}),
    ("GET", "/v1/webhook_endpoints", None, "stripe.webhook_endpoint.list", "low", {}),
    ("GET", "/v1/webhook_endpoints/we_1", None, "stripe.webhook_endpoint.read", "low", {"id": "we_1"}),
    ("POST", "/v1/webhook_endpoints/we_1", {"url": "https://elsewhere.test/", "disabled": "false"},
     "stripe.webhook_endpoint.update", "high",
     {"id": "we_1", "url": "https://elsewhere.test/", "disabled": "false"}),
    ("DELETE", "/v1/webhook_endpoints/we_1", None, "stripe.webhook_endpoint.delete", "high", {"id": "we_1"}),
    # events
    ("GET", "/v1/events?type=charge.succeeded", None,
     "stripe.event.list", "low", {"type": "charge.succeeded"}),
    ("GET", "/v1/events/evt_1", None, "stripe.event.read", "low", {"id": "evt_1"}),
]


@pytest.mark.parametrize(("method", "target", "body", "action", "risk", "params"), GOLDEN,
                         ids=[f"{m} {t} -> {a}" for m, t, _, a, _, _ in GOLDEN])
def test_golden(method: str, target: str, body: dict[str, str] | None, action: str, risk: str,
                params: dict[str, object]) -> None:
    got = SC.classify(view(method, target, body))
    assert (got.name, got.risk, got.connector) == (action, risk, "stripe")
    assert dict(got.params) == params
    assert got.unavailable == frozenset()


def test_golden_table_covers_every_route() -> None:
    """Each Route has a golden row that reaches it: a request of its method on a path its template matches,
    classified as its action."""
    for route in STRIPE_ROUTES:
        pattern = route.compile()
        assert any(m == route.method and pattern.match(t.partition("?")[0]) and a == f"stripe.{route.action}"
                   for m, t, _, a, _, _ in GOLDEN), route


REQUIRED_NAMES = {f"stripe.{a}" for a in (
    "charge.create", "charge.read", "charge.list", "charge.update", "charge.capture",
    "refund.create", "refund.read", "refund.list", "refund.update", "refund.cancel",
    "payment_intent.create", "payment_intent.read", "payment_intent.list", "payment_intent.update",
    "payment_intent.confirm", "payment_intent.capture", "payment_intent.cancel", "payment_intent.search",
    "setup_intent.create", "setup_intent.read", "setup_intent.confirm", "setup_intent.cancel",
    "customer.create", "customer.read", "customer.list", "customer.update", "customer.delete",
    "customer.search",
    "payment_method.create", "payment_method.read", "payment_method.attach", "payment_method.detach",
    "payment_method.list",
    "subscription.create", "subscription.read", "subscription.list", "subscription.update",
    "subscription.cancel",
    "invoice.create", "invoice.read", "invoice.list", "invoice.update", "invoice.finalize", "invoice.pay",
    "invoice.send", "invoice.void", "invoice.delete",
    "product.create", "product.read", "product.list", "product.update", "product.delete",
    "price.create", "price.read", "price.list", "price.update",
    "coupon.create", "coupon.read", "coupon.list", "coupon.update", "coupon.delete",
    "promotion_code.create", "promotion_code.read", "promotion_code.list", "promotion_code.update",
    "checkout_session.create", "checkout_session.read", "checkout_session.list", "checkout_session.expire",
    "payment_link.create", "payment_link.read", "payment_link.list", "payment_link.update",
    "transfer.create", "transfer.read", "transfer.list", "transfer_reversal.create",
    "payout.create", "payout.read", "payout.list", "payout.cancel",
    "balance.read", "balance_transaction.list", "balance_transaction.read",
    "dispute.read", "dispute.list", "dispute.update", "dispute.close",
    "account.create", "account.read", "account.list", "account.update", "account.delete",
    "account_link.create",
    "webhook_endpoint.create", "webhook_endpoint.read", "webhook_endpoint.list", "webhook_endpoint.update",
    "webhook_endpoint.delete",
)}


def test_actions_cover_required_and_at_least_fifty() -> None:
    assert REQUIRED_NAMES <= SC.actions
    assert len(SC.actions - {a for a in SC.actions if a.startswith("stripe.unknown.")}) >= 50
    assert all(re.fullmatch(r"stripe\.[a-z_]+\.[a-z_]+", a) for a in SC.actions)


@pytest.mark.parametrize(("action", "risk"), [
    # moving money
    ("stripe.charge.create", "high"), ("stripe.charge.capture", "high"), ("stripe.refund.create", "high"),
    ("stripe.payment_intent.confirm", "high"), ("stripe.payment_intent.capture", "high"),
    ("stripe.transfer.create", "high"), ("stripe.transfer_reversal.create", "high"),
    ("stripe.payout.create", "high"), ("stripe.invoice.pay", "high"),
    # webhook endpoints and connected accounts
    ("stripe.webhook_endpoint.create", "high"), ("stripe.webhook_endpoint.update", "high"),
    ("stripe.account.create", "high"), ("stripe.account.update", "high"),
    ("stripe.account.delete", "critical"),
    # reads
    ("stripe.charge.read", "low"), ("stripe.balance.read", "low"), ("stripe.customer.search", "low"),
])
def test_risk_policy(action: str, risk: str) -> None:
    assert {r.risk for r in STRIPE_ROUTES if f"stripe.{r.action}" == action} == {risk}


# --- amounts: digits become ints, anything else stays the string sent ---

@pytest.mark.parametrize(("sent", "expected"), [
    ("1500", 1500), ("0", 0), ("007", 7), ("99999999", 99999999), ("1" * 18, int("1" * 18)),
    ("-2500", "-2500"), ("12.5", "12.5"), ("", ""), (" 100", " 100"), ("100 ", "100 "), ("1e3", "1e3"),
    ("0x10", "0x10"), ("1_000", "1_000"), ("１２", "１２"), ("٣", "٣"), ("9" * 19, "9" * 19),
    ("9" * 5000, "9" * 5000),
])
def test_amount_conversion(sent: str, expected: object) -> None:
    got = SC.classify(view("POST", "/v1/customers/cus_1/balance_transactions",
                           {"amount": sent, "currency": "usd"}))
    assert got.params["amount"] == expected
    assert type(got.params["amount"]) is type(expected)


def test_every_amount_field_is_converted_and_others_are_not() -> None:
    capture = SC.classify(view("POST", "/v1/payment_intents/pi_1/capture", {"amount_to_capture": "10"}))
    assert capture.params["amount_to_capture"] == 10
    price = SC.classify(view("POST", "/v1/prices", {"unit_amount": "20", "currency": "usd"}))
    assert price.params["unit_amount"] == 20
    coupon = SC.classify(view("POST", "/v1/coupons", {"amount_off": "30", "percent_off": "40"}))
    assert (coupon.params["amount_off"], coupon.params["percent_off"]) == (30, "40")
    confirm = SC.classify(view("POST", "/v1/payment_intents", {"amount": "1", "confirm": "true"}))
    assert confirm.params["confirm"] == "true"


def test_policy_can_compare_amount() -> None:
    big = SC.classify(view("POST", "/v1/refunds", {"charge": "ch_1", "amount": "20000"}))
    small = SC.classify(view("POST", "/v1/refunds", {"charge": "ch_1", "amount": "999"}))
    assert isinstance(big.params["amount"], int) and big.params["amount"] > 10000
    assert isinstance(small.params["amount"], int) and not small.params["amount"] > 10000


def test_json_body_amounts() -> None:
    """A JSON body (not what the SDKs send, but readable) keeps numbers as numbers."""
    def json_view(body: object) -> RequestView:
        return RequestView(method="POST", scheme="https", host="api.stripe.com", port=443,
                           path="/v1/transfers",
                           headers={"content-type": "application/json"}, body=json.dumps(body).encode())
    assert SC.classify(json_view({"amount": 1500, "destination": "acct_1"})).params == {
        "amount": 1500, "destination": "acct_1"}
    assert SC.classify(json_view({"amount": "1500"})).params == {"amount": 1500}
    assert SC.classify(json_view({"amount": 15.5})).params == {"amount": 15.5}


# --- bodies that cannot be read: the route still decides, the body params are unavailable ---

def test_truncated_body_marks_body_params_unavailable() -> None:
    got = SC.classify(view("POST", "/v1/refunds", {"charge": "ch_1", "amount": "100"}, complete=False))
    assert (got.name, got.risk) == ("stripe.refund.create", "high")
    assert dict(got.params) == {}
    assert got.unavailable == {"amount", "currency", "customer", "charge", "payment_intent", "reason"}
    capture = SC.classify(view("POST", "/v1/payment_intents/pi_1/capture", {"amount_to_capture": "5"},
                               complete=False))
    assert capture.name == "stripe.payment_intent.capture"
    assert dict(capture.params) == {"id": "pi_1"}
    assert capture.unavailable == {"amount_to_capture"}


def test_truncated_empty_body_is_unreadable() -> None:
    got = SC.classify(view("POST", "/v1/transfers", raw=b"", complete=False))
    assert got.name == "stripe.transfer.create"
    assert got.unavailable == {"amount", "currency", "destination", "source_transaction"}


@pytest.mark.parametrize(("raw", "ctype"), [
    (b"amount=100&destination=\xff\xfe", FORM),          # not UTF-8
    (b"amount=100&destination=acct_1", None),             # no content type: read as JSON, which it is not
    (b"amount=100&destination=acct_1", "text/plain"),
    (b'{"amount": 100', "application/json"),              # malformed JSON
    (b'[1, 2]', "application/json"),                      # JSON, but not an object
])
def test_malformed_body_marks_body_params_unavailable(raw: bytes, ctype: str | None) -> None:
    got = SC.classify(view("POST", "/v1/transfers", raw=raw, ctype=ctype))
    assert (got.name, got.risk) == ("stripe.transfer.create", "high")
    assert dict(got.params) == {}
    assert got.unavailable == {"amount", "currency", "destination", "source_transaction"}


def test_unreadable_body_on_route_without_body_params_is_harmless() -> None:
    got = SC.classify(view("POST", "/v1/payouts/po_1/cancel", raw=b"\xff", complete=False))
    assert (got.name, dict(got.params)) == ("stripe.payout.cancel", {"id": "po_1"})
    assert got.unavailable == frozenset()


def test_empty_body_is_readable() -> None:
    got = SC.classify(view("POST", "/v1/payment_intents/pi_1/confirm"))
    assert (dict(got.params), got.unavailable) == ({"id": "pi_1"}, frozenset())


# --- headers and query ---

def test_stripe_account_header_is_a_param() -> None:
    body = {"amount": "1", "currency": "usd", "destination": "acct_2"}
    got = SC.classify(view("POST", "/v1/transfers", body, headers={"stripe-account": "acct_9"}))
    assert got.params == {"amount": 1, "currency": "usd", "destination": "acct_2", "stripe_account": "acct_9"}
    unknown = SC.classify(view("GET", "/v1/nothing", headers={"stripe-account": "acct_9"}))
    assert dict(unknown.params) == {"method": "GET", "path": "/v1/nothing"}


def test_repeated_query_param_first_wins() -> None:
    got = SC.classify(view("GET", "/v1/charges?customer=cus_1&customer=cus_2"))
    assert got.params == {"customer": "cus_1"}


# --- ordering, normalisation ---

@pytest.mark.parametrize(("method", "target", "action"), [
    ("GET", "/v1/charges/search", "stripe.charge.search"),
    ("GET", "/v1/customers/search", "stripe.customer.search"),
    ("GET", "/v1/payment_intents/search", "stripe.payment_intent.search"),
    ("GET", "/v1/subscriptions/search", "stripe.subscription.search"),
    ("GET", "/v1/invoices/search", "stripe.invoice.search"),
    ("GET", "/v1/invoices/upcoming", "stripe.invoice.preview"),
    ("GET", "/v1/invoices/upcoming/lines", "stripe.invoice.preview"),
    ("POST", "/v1/invoices/create_preview", "stripe.invoice.preview"),
    ("GET", "/v1/products/search", "stripe.product.search"),
    ("GET", "/v1/prices/search", "stripe.price.search"),
    ("GET", "/v1/account", "stripe.account.read"),
    ("GET", "/v1/charges/", "stripe.charge.list"),                        # trailing slash tolerated
    ("get", "/v1/charges", "stripe.charge.list"),                         # method case normalised
    ("POST", "/v1/charges/ch_1/../ch_2/capture", "stripe.charge.capture"),  # dot segments resolved
    ("POST", "/v1//refunds", "stripe.refund.create"),                     # duplicate slashes collapsed
    ("POST", "/v1/charges/ch_1%2Fcapture", "stripe.charge.capture"),      # an encoded slash is still a slash
    ("GET", "/v1/x/../../v1/balance", "stripe.balance.read"),
])
def test_ordering_and_normalisation(method: str, target: str, action: str) -> None:
    assert SC.classify(view(method, target)).name == action


def test_dot_segments_give_the_resolved_id() -> None:
    assert SC.classify(view("POST", "/v1/charges/ch_1/../ch_2/capture")).params == {"id": "ch_2"}


# --- unknowns ---

@pytest.mark.parametrize(("method", "path", "action"), [
    ("GET", "/v1/nothing", "stripe.unknown.get"),
    ("GET", "/v1", "stripe.unknown.get"),
    ("GET", "/", "stripe.unknown.get"),
    ("GET", "", "stripe.unknown.get"),
    ("GET", "/charges", "stripe.unknown.get"),                   # no version prefix
    ("GET", "/v2/core/events", "stripe.unknown.get"),            # another API version
    ("GET", "/v1/charges/ch_1/nothing", "stripe.unknown.get"),
    ("POST", "/v1/balance", "stripe.unknown.post"),              # balance is read-only
    ("POST", "/v1/charges/ch_1/capture/again", "stripe.unknown.post"),
    ("PUT", "/v1/charges/ch_1", "stripe.unknown.put"),           # Stripe updates with POST
    ("PATCH", "/v1/customers/cus_1", "stripe.unknown.patch"),
    ("DELETE", "/v1/charges/ch_1", "stripe.unknown.delete"),     # charges cannot be deleted
    ("DELETE", "/v1/refunds/re_1", "stripe.unknown.delete"),
    ("HEAD", "/v1/charges", "stripe.unknown.head"),
    ("OPTIONS", "/v1/charges", "stripe.unknown.options"),
    ("TRACE", "/v1/charges", "stripe.unknown.other"),
    ("PROPFIND", "/v1/charges", "stripe.unknown.other"),
])
def test_unknown(method: str, path: str, action: str) -> None:
    got = SC.parse(view(method, path))
    assert (got.name, got.risk, got.connector) == (action, "high", "stripe")
    assert dict(got.params) == {"method": method, "path": path}
    assert got.unavailable == frozenset()


def test_unknown_keeps_the_method_as_sent() -> None:
    got = SC.parse(view("trace", "/v1/charges"))
    assert got.name == "stripe.unknown.other"
    assert dict(got.params) == {"method": "trace", "path": "/v1/charges"}


def test_class_attributes() -> None:
    assert StripeConnector.type_name == "stripe"
    assert StripeConnector.namespace == "stripe"
    assert StripeConnector.default_hosts == ("api.stripe.com",)
    assert StripeConnector("pay", ("API.Stripe.com",)).hosts == ("api.stripe.com",)
    assert StripeConnector("pay", ("api.stripe.com",)).parse(view("GET", "/v1/balance")).connector == "pay"


# --- the table itself ---

def _sample_path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x9", template)


@pytest.mark.parametrize("route", [r for r in STRIPE_ROUTES if r.when is None],
                         ids=[f"{r.method} {r.template}" for r in STRIPE_ROUTES if r.when is None])
def test_every_route_is_reachable(route: Route) -> None:
    """No route is shadowed by an earlier one: a request built from its template yields its own action."""
    got = SC.classify(view(route.method, _sample_path(route.template)))
    assert (got.name, got.risk) == (f"stripe.{route.action}", route.risk)


_EXTRA_PATHS = ("", "/", "/v1", "/v1/", "/v2/x", "/v1/charges/x9/y9", "/v1/unknown", "/v1/x9/x9/x9/x9/x9")
_ALL_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT", "PROPFIND",
                "get", "Post")


def test_actions_is_exactly_what_parse_can_emit() -> None:
    """Every name parse returns is listed in ``actions``; every listed name is returned for some request."""
    paths = {_sample_path(r.template) for r in STRIPE_ROUTES} | set(_EXTRA_PATHS)
    emitted = {SC.parse(view(m, p)).name for m in _ALL_METHODS for p in paths}
    assert emitted == SC.actions


def test_route_table_is_consistent() -> None:
    verbs = ("get", "head", "options", "post", "put", "patch", "delete", "other")
    unknown = {f"stripe.unknown.{m}" for m in verbs}
    assert SC.actions == {f"stripe.{r.action}" for r in STRIPE_ROUTES} | unknown
    seen: set[tuple[str, str]] = set()
    for r in STRIPE_ROUTES:
        assert r.template.startswith("/v1/"), r
        assert r.method in ("GET", "POST", "DELETE"), r
        assert r.risk in ("low", "medium", "high", "critical"), r
        assert (r.method, r.template) not in seen, r
        seen.add((r.method, r.template))
        if r.method == "GET":
            assert r.risk == "low", r
        # Undoing something is high, except cancelling a setup intent: it only abandons saving a card.
        if r.action.endswith((".delete", ".cancel", ".detach", ".void", ".close", ".reverse")):
            assert r.risk in ("high", "critical") or r.action == "setup_intent.cancel", r
        if r.action.endswith((".read", ".list", ".search", ".preview")):
            assert r.risk == "low", r
