"""Seeds a throw-away platform for the API fuzz test (run as a script with the server's
environment): migrates, makes a user holding every role, one phantom case with its series
and a saved mask, and prints the user's token."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from accounts.services import user_create
    from annotation.services import annotation_import_mask
    from cases.phantoms import generate_case
    from cases.services.case import case_create
    from cases.services.series import series_create_from_phantom

    call_command("migrate", verbosity=0, interactive=False)
    user = user_create(
        username="fuzz",
        password="fuzz-long-password-1",
        roles=["neurologist", "reviewer", "data_manager", "clinician"],
    )
    phantom = generate_case(etiology="lacunar", seed=1, shape=(8, 64, 64))
    case = case_create(user=user, code="FZ-0001", etiology="lacunar", confirmed=True)
    series = series_create_from_phantom(case=case, phantom=phantom, uid_stem="5")
    annotation_import_mask(user=user, series=series["DWI"], mask=phantom.mask, state="draft")
    print(Token.objects.create(user=user).key)


if __name__ == "__main__":
    main()
