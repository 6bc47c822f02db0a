"""Upload records: one per stored object, behind one interface (`base.RecordStore`)."""
