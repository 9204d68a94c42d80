"""The pipeline bench's record count by changelog: which table's state costs the records."""

from opengym_streams.bench.pipeline import changelog_per_table


def test_changelog_records_are_counted_per_table_across_partitions_and_only_what_the_run_wrote():
    prefix = "bench.abc."
    before = {(f"{prefix}opengym-reservation-bookings-changelog", 0): 10,
              (f"{prefix}opengym-reservation-bookings-changelog", 1): 0}
    after = {(f"{prefix}opengym-reservation-bookings-changelog", 0): 30,
             (f"{prefix}opengym-reservation-bookings-changelog", 1): 20,
             (f"{prefix}opengym-correlation-transactions-changelog", 0): 100,
             (f"{prefix}opengym-finance-ledger-changelog", 0): 0,
             (f"{prefix}opengym.reservation.events", 0): 500}
    assert changelog_per_table(prefix, 20, before, after) == {
        "opengym-correlation-transactions": 5.0, "opengym-reservation-bookings": 2.0}
    assert list(changelog_per_table(prefix, 20, before, after)) == [
        "opengym-correlation-transactions", "opengym-reservation-bookings"], "most first"
