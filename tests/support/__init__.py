"""What tests and bench share: builders, fakes and the local stack, each in one place.

`sign`: settings, sign-in tokens, core requests and policy decoding for the sign function.
`callbacks`: signed OSS callbacks (valid by default), the key server, the clock, WSGI and FC 3.0
requests, failing stores. `ots`: an in-memory Tablestore client. `devstack`: `make dev` as a
process. `data`: tests/data/ (OSS vectors, hostile inputs, the fuzz corpus).
"""
