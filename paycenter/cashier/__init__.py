"""The cashier (收银台): a hosted page where the customer binds a card, signs by SMS and pays.
See docs/cashier.md."""
