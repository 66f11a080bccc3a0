"""Secrets through Powertools from (moto's) Secrets Manager: the value, or an error that never shows it."""

import pytest

from tokenmeter.core import SecretUnavailable
from tokenmeter.core.secrets import load_secret


def test_secret_value_and_missing_secret(aws):
    import boto3

    arn = boto3.client("secretsmanager").create_secret(Name="lago-key", SecretString="lago_s3cr3t_key")["ARN"]
    assert load_secret(arn) == "lago_s3cr3t_key"
    missing = arn.replace("lago-key", "nothing-here")
    with pytest.raises(SecretUnavailable) as error:
        load_secret(missing)
    assert missing in str(error.value) and "s3cr3t" not in str(error.value)
