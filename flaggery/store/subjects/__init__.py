"""The subjects table and its buckets: the admin operations (`admin`), checking a batch of
(id, weight) pairs (`batch`), inserting them (`insert`, by binary COPY on PostgreSQL:
`binary_copy`), new buckets shared out (`growth`, in one statement per table: `bulk`), and the
column-wise read a full load uses (`load`).

The single-subject writes the group commit applies set-based are flaggery.store.planned_writes:
the database handle applies them, so they sit beside it rather than in here. Nothing is
imported here.
"""
