import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from readiness.audit.services import LEGACY_CHAIN
from readiness.audit.verification import verification_record, verify_all
from signoff.lifecycle.trail import verify_signature_rows
from signoff.records.anchors import NoAnchor, anchor_problem, stored_anchors
from signoff.records.content import stated_anchor


class Command(BaseCommand):
    help = (
        "Verify the audit trail: every deployment's hash chain, the installation's and the "
        "legacy chain, every checkpoint of their heads (its hash chain, its Merkle root, its "
        "copy in the anchor log, each committed head still on its chain), the head every "
        "stored record prints, and every sign-off, revocation, waiver and record row against "
        "its audit event. Names the first bad event of each broken chain. With --anchor, also "
        "the head printed by each given record PDF. Exit code 1 on any problem."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--heads", action="store_true", help="Print every chain's length and full head."
        )
        parser.add_argument(
            "--anchor",
            nargs="+",
            metavar="FILE.pdf",
            default=[],
            help="Record PDFs whose printed audit head must still be on today's chain.",
        )

    def handle(self, *args, heads=False, anchor=(), **options):
        started = time.monotonic()
        problems, anchors = [], []
        for path in anchor:
            try:
                found = stated_anchor(Path(path).read_bytes())
            except (OSError, NoAnchor) as exc:
                problems.append(f"{path}: {exc}")
                continue
            self.stdout.write(f"{path}: record {found.record_id or '?'} prints {found}")
            anchors.append((found, path))
        for who, found, why in stored_anchors():
            if found is None:
                problems.append(f"{who}: its printed audit head cannot be read ({why})")
            else:
                anchors.append((found, who))
        # Legacy heads name an event by id: checked alone. Chained heads join the walk, so
        # a rewrite is named from its first bad position.
        chained = []
        for found, who in anchors:
            if found.chain == LEGACY_CHAIN:
                problem = anchor_problem(found, source=who)
                if problem:
                    problems.append(problem)
            else:
                chained.append((found.chain, found.position, found.hash, who))
        report = verify_all(anchors=chained)
        report.problems.extend(problems)
        # The rows that carry what a signature means, held to their events on the chain.
        report.problems.extend(verify_signature_rows())
        # The fullest check there is (records and signature rows too): /metrics reports it as
        # the last verification, like the scheduled one.
        verification_record(report, source="verify_audit", seconds=time.monotonic() - started)
        if heads:
            for chain in report.chains:
                mark = "ok" if chain.ok else "BROKEN"
                self.stdout.write(f"{chain.chain}\t{chain.events}\t{chain.head}\t{mark}")
        if not report.ok:
            shown = "\n".join(f"  {problem}" for problem in report.problems[:50])
            more = len(report.problems) - 50
            raise CommandError(
                f"audit trail broken ({report.events} events on {len(report.chains)} chains "
                f"verified up to the breaks):\n{shown}"
                + (f"\n  … and {more} more" if more > 0 else "")
            )
        self.stdout.write(
            f"audit trail intact: {report.events} events on {len(report.chains)} chains, "
            f"{report.checkpoints} checkpoints, {len(anchors)} record anchors; newest "
            f"checkpoint root {report.root or 'none yet'}"
        )
