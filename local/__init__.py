"""The local stack: an OSS emulator (PostObject + upload callbacks) and the `make dev` runner."""
