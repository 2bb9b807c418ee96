"""The cashier's pure logic: session tokens, signed requests, the session's state machine."""
