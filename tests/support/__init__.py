"""What tests and bench share: builders, fakes and the local stack, each in one place.

`sign`: settings, sign-in tokens, core requests and policy decoding for the sign function.
`callbacks`: signed OSS callbacks (valid by default), the injected key fetch, the clock, failing
stores. `fc`: FC 2.0 WSGI environs and FC 3.0 events. `keyhost`: keys over loopback HTTP.
`ots`: an in-memory Tablestore client. `devstack`: `make dev` as a process and a browser's calls
to a running stack. `livestack`: that stack in-process, with a shiftable emulator clock and a
callback journal. `emulator`: the OSS emulator, valid-by-default PostObject forms, seeded
objects, OSS's errors. `data`: tests/data/ (OSS vectors, hostile inputs, the fuzz corpus).
`records`: a valid record and fresh stores of every backend.
`threads`: threads released together for races. `tools`: a missing tool skips locally, fails in CI.
"""
