from django.core.management.base import BaseCommand, CommandError

from readiness.audit.verification import verify_all
from signoff.lifecycle.trail import verify_signature_rows


class Command(BaseCommand):
    help = (
        "Verify the audit trail: every deployment's hash chain, the installation's and the "
        "legacy chain, and every checkpoint of their heads (its hash chain, its Merkle root, "
        "and each committed head still on its chain). Names the first event edited, removed, "
        "inserted out of order or rewritten on each broken chain, and every sign-off, revocation, "
        "waiver and record whose row differs from its audit event. Exit code 1 on any problem."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--heads", action="store_true", help="Print every chain's length and full head."
        )

    def handle(self, *args, heads=False, **options):
        report = verify_all()
        # The rows that carry what a signature means, held to their events on the chain.
        report.problems.extend(verify_signature_rows())
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
            f"{report.checkpoints} checkpoints; newest checkpoint root {report.root or 'none yet'}"
        )
