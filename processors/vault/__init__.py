"""The card vault's pure logic: card elements, their validation, and envelope encryption.

No I/O here: streams/views/vault.py keeps the sealed records on a compacted topic.
"""
