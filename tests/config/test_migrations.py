"""The models and their migrations agree: a model change without its migration leaves the
database behind the code (320e574 changed the phone's validator and wrote none)."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db  # makemigrations checks the applied history too
def test_every_model_change_has_its_migration(capsys):
    try:
        call_command("makemigrations", check=True, dry_run=True, verbosity=1)
    except SystemExit:
        pytest.fail("makemigrations would write:\n" + capsys.readouterr().out)
