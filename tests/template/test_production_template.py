"""template.yaml as a platform team reads it before production, on what CloudFormation receives after SAM's
transform (samtranslator, from the SAM CLI's own environment): the roles SAM would generate, the permissions
and event source mappings it adds, are checked with the rest."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import ROOT

from local.invoke import function_environment, load_template

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
PARAMETERS = {"NatsUrl": "nats://nats.internal:4222",
              "LagoApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:lago-AbCdEf"}
TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:  # SAM looks managed policy names up in IAM; the template names none
    def load(self):
        return {}

template = yaml_parse(open("template.yaml").read())
for name, resource in template["Resources"].items():  # as `sam package` leaves them
    for key in ("CodeUri", "ContentUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = f"s3://artifacts/{name}.zip"
print(json.dumps(transform(template, json.loads(sys.argv[1]), NoManagedPolicies())))
"""
NATS_FUNCTIONS = {"PublishEventFunction", "PublishHttpFunction", "LagoSyncFunction", "ReconcileFunction"}
ALARM_TARGET = {"Fn::If": ["MakesAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}


@pytest.fixture(scope="module")
def deployed() -> dict:
    done = subprocess.run([str(SAM_PYTHON), "-c", TRANSFORM, json.dumps(PARAMETERS)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def of_type(deployed: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in deployed["Resources"].items() if r["Type"] == kind}


def statements(role: dict) -> list[dict]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:  # a grant that exists only with its parameter set
                statement = statement["Fn::If"][1]
            found.append(statement)
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_every_alarm_tells_the_alarm_topic_when_it_fires_and_when_it_clears(deployed):
    alarms = of_type(deployed, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 16
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [ALARM_TARGET], name
        assert alarm["Properties"]["OKActions"] == [ALARM_TARGET], name
    resources = deployed["Resources"]
    assert resources["AlarmTopic"]["Condition"] == "MakesAlarmTopic"
    assert resources["AlarmEmailSubscription"]["Properties"]["Protocol"] == "email"
    # CloudWatch may publish to the topic the stack makes, and only alarms of this account and region.
    [grant] = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert grant["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and grant["Action"] == "sns:Publish"


def test_dead_letter_queues_alarm_on_age_long_before_sqs_drops_them(deployed):
    alarms = of_type(deployed, "AWS::CloudWatch::Alarm").values()
    for queue in ("RecordDeadLetterQueue", "UsageDeadLetterQueue", "InvocationFailureQueue"):
        retention = deployed["Resources"][queue]["Properties"]["MessageRetentionPeriod"]
        [age] = [a["Properties"] for a in alarms if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
                 and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue, "QueueName"]}]
        assert age["Threshold"] <= retention / 4, queue  # 3 days of SQS's 14


def test_every_function_has_an_errors_alarm_and_a_silent_one_alarms(deployed):
    alarms = [a["Properties"] for a in of_type(deployed, "AWS::CloudWatch::Alarm").values()]
    watched = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms
               if a["Namespace"] == "AWS/Lambda" and a["MetricName"] == "Errors"}
    assert watched == set(of_type(deployed, "AWS::Lambda::Function"))
    by_metric = {a["MetricName"]: a for a in alarms if isinstance(a["Namespace"], dict)}
    # lago_sync reports its consumer's lag every run, reconcile its count every pass: no data is no run.
    assert by_metric["ConsumerPending"]["TreatMissingData"] == "breaching"
    assert by_metric["TotalsMessagesApplied"]["TreatMissingData"] == "breaching"
    # Drift is reported once a pass: the alarm keeps its state between reports instead of clearing.
    assert by_metric["ReconciliationDriftingMetrics"]["TreatMissingData"] == "ignore"
    for alarm in by_metric.values():
        assert alarm["Namespace"] == {"Fn::Sub": "tokenmeter/${AWS::StackName}"}


def test_only_the_functions_that_talk_to_nats_join_the_vpc_and_only_their_roles_may(deployed):
    resources = deployed["Resources"]
    for name, function in of_type(deployed, "AWS::Lambda::Function").items():
        config = function["Properties"].get("VpcConfig")
        if name in NATS_FUNCTIONS:
            assert config["Fn::If"][0] == "HasVpc" and config["Fn::If"][2] == {"Ref": "AWS::NoValue"}, name
        else:
            assert config is None, name
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        managed = role["Properties"].get("ManagedPolicyArns", [])
        if name in NATS_FUNCTIONS:
            [vpc] = managed
            assert vpc["Fn::If"][0] == "HasVpc" and "AWSLambdaVPCAccessExecutionRole" in json.dumps(vpc), name
        else:
            assert managed == [], name
    rule = deployed["Rules"]["SubnetsNeedSecurityGroups"]
    assert "VpcSubnetIds" in json.dumps(rule["RuleCondition"])
    assert "VpcSecurityGroupIds" in json.dumps(rule["Assertions"][0]["Assert"])


def test_every_role_is_the_functions_own_and_grants_only_what_it_uses(deployed):
    resources = deployed["Resources"]
    roles = of_type(deployed, "AWS::IAM::Role")
    functions = of_type(deployed, "AWS::Lambda::Function")
    assert {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()} == set(roles)
    for name, role in roles.items():
        for statement in statements(role):
            actions = as_list(statement["Action"])
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), (name, statement)
            if statement["Resource"] == "*":
                assert set(actions) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, (name, statement)
    # Each poller reads its own queue: count_tokens the log bucket's notifications, publish_event the usage.
    pollers = {n: s["Resource"] for n, r in roles.items() for s in statements(r)
               if "sqs:ReceiveMessage" in as_list(s["Action"])}
    assert pollers == {"CountTokensRole": {"Fn::GetAtt": ["InferenceLogObjectQueue", "Arn"]},
                       "PublishEventRole": {"Fn::GetAtt": ["UsageQueue", "Arn"]}}
    for name, function in functions.items():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        [logs] = [s for s in statements(role) if "logs:PutLogEvents" in as_list(s["Action"])]
        assert logs["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}, name
    secrets = {n: [s["Resource"] for s in statements(r) if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
               for n, r in roles.items()}
    assert all(r in ({"Ref": "NatsCredsSecretArn"}, {"Ref": "LagoApiKeySecretArn"}, {"Ref": "HttpApiKeySecretArn"})
               for found in secrets.values() for r in found)
    assert secrets["CountTokensRole"] == []
    # count_tokens writes in the log bucket only its stream memory (Anthropic streams split between deliveries),
    # a prefix the bucket's notifications never name.
    writes = [s for s in statements(roles["CountTokensRole"]) if "s3:PutObject" in as_list(s["Action"])]
    assert [as_list(s["Action"]) for s in writes] == [["s3:PutObject", "s3:DeleteObject"]]
    assert writes[0]["Resource"]["Fn::Sub"].endswith("/tokenmeter-streams/*")


def test_logs_are_kept_for_the_retention_parameter_and_go_with_the_stack(deployed):
    resources = deployed["Resources"]
    for name, function in of_type(deployed, "AWS::Lambda::Function").items():
        group = resources[function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert group["DeletionPolicy"] == "Delete", name
    [stage] = of_type(deployed, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    assert stage["Properties"]["DefaultRouteSettings"] == {"ThrottlingRateLimit": {"Ref": "HttpThrottlingRateLimit"},
                                                           "ThrottlingBurstLimit": {"Ref": "HttpThrottlingBurstLimit"}}


def test_usage_and_logs_survive_the_stack_and_the_bucket_forgets_on_schedule(deployed):
    resources = deployed["Resources"]
    for name in ("InferenceLogBucket", "UsageQueue", "UsageDeadLetterQueue", "RecordDeadLetterQueue",
                 "InvocationFailureQueue", "InferenceLogObjectQueue", "InferenceLogObjectDeadLetterQueue"):
        assert resources[name]["DeletionPolicy"] == "Retain" and resources[name]["UpdateReplacePolicy"] == "Retain", name
    bucket = resources["InferenceLogBucket"]["Properties"]
    assert "${AWS::Region}" in bucket["BucketName"]["Fn::Sub"]
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-inference-logs"]["ExpirationInDays"] == {"Ref": "InferenceLogRetentionDays"}
    assert rules["expire-inference-logs"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert "NoncurrentDays" in rules["expire-inference-logs"]["NoncurrentVersionExpiration"]
    assert deployed["Parameters"]["InferenceLogRetentionDays"]["MinValue"] >= 62  # the ledger's days
    # Only log objects reach count_tokens: Bedrock's permission-check object lies outside AWSLogs/.
    assert set(bucket["NotificationConfiguration"]) == {"QueueConfigurations"}
    [notification] = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == {"Fn::GetAtt": ["InferenceLogObjectQueue", "Arn"]}
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "InferenceLogKeyPrefix"}}]
    assert deployed["Parameters"]["InferenceLogKeyPrefix"]["Default"] == "AWSLogs/"
    grants = resources["InferenceLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [bedrock] = [g for g in grants if g["Effect"] == "Allow"]
    assert bedrock["Principal"] == {"Service": "bedrock.amazonaws.com"} and bedrock["Action"] == "s3:PutObject"
    assert set(bedrock["Condition"]) == {"StringEquals", "ArnLike"}  # this account's Bedrock only


def test_ticks_never_pile_up_and_nothing_needs_a_large_concurrency_quota(deployed):
    resources = deployed["Resources"]
    for name in ("LagoSyncFunction", "ReconcileFunction"):
        config = resources[f"{name}EventInvokeConfig"]["Properties"]
        assert config["MaximumRetryAttempts"] == 0 and config["MaximumEventAgeInSeconds"] <= 300, name
    for name, function in of_type(deployed, "AWS::Lambda::Function").items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        assert reserved is None or reserved["Fn::If"][2] == {"Ref": "AWS::NoValue"}, name
    assert deployed["Parameters"]["LagoSyncReservedConcurrency"]["Default"] == 0
    mappings = {m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
                for m in of_type(deployed, "AWS::Lambda::EventSourceMapping").values()}
    assert set(mappings) == {"PublishEventFunction", "CountTokensFunction"}
    assert mappings["PublishEventFunction"]["ScalingConfig"] == {
        "MaximumConcurrency": {"Ref": "PublishEventMaxConcurrency"}}
    assert resources["ReconcileFunction"]["Properties"]["MemorySize"] >= 1769  # CPU-bound: one whole vCPU


def test_names_come_from_the_stack_so_two_stacks_never_share_them():
    template = load_template(ROOT / "template.yaml")
    one = function_environment(template, "ReconcileFunction", {"Parameters": {"AWS::StackName": "acme-prod"}})
    two = function_environment(template, "ReconcileFunction", {"Parameters": {"AWS::StackName": "acme-eu"}})
    names = ("NATS_STREAM", "NATS_SUBJECT_PREFIX", "NATS_CONSUMER", "NATS_DEAD_LETTER_STREAM", "NATS_UNBILLABLE_STREAM",
             "TOTALS_BUCKET", "RECONCILIATION_BUCKET", "POWERTOOLS_METRICS_NAMESPACE")
    assert {k: one[k] for k in names} == {
        "NATS_STREAM": "acme-prod-USAGE", "NATS_SUBJECT_PREFIX": "acme-prod-usage", "NATS_CONSUMER": "acme-prod-lago-sync",
        "NATS_DEAD_LETTER_STREAM": "acme-prod-USAGE_DLQ", "NATS_UNBILLABLE_STREAM": "acme-prod-USAGE_UNBILLABLE",
        "TOTALS_BUCKET": "acme-prod-totals", "RECONCILIATION_BUCKET": "acme-prod-reconciliation",
        "POWERTOOLS_METRICS_NAMESPACE": "tokenmeter/acme-prod"}
    assert not {one[k] for k in names} & {two[k] for k in names}
    # A stack from before keeps its ledger by naming it.
    legacy = function_environment(template, "LagoSyncFunction", {"Parameters": {
        "NatsStream": "USAGE", "NatsSubjectPrefix": "usage", "NatsConsumer": "lago-sync"}})
    assert (legacy["NATS_STREAM"], legacy["NATS_SUBJECT_PREFIX"], legacy["NATS_CONSUMER"],
            legacy["NATS_DEAD_LETTER_STREAM"]) == ("USAGE", "usage", "lago-sync", "USAGE_DLQ")
    assert template["Parameters"]["NatsReplicas"]["Default"] == 3


def test_outputs_give_the_command_everything_it_needs_and_parameters_refuse_what_is_not_an_arn(deployed):
    outputs = deployed["Outputs"]
    for name in ("UsageApiUrl", "UsageApiInvokeArn", "InferenceLogBucketName", "UsageQueueUrl", "UsageDeadLetterQueueUrl",
                 "RecordDeadLetterQueueUrl", "InvocationFailureQueueUrl", "AlarmTopicArn", "NatsStream",
                 "NatsSubjectPrefix", "NatsConsumer", "TotalsBucket", "ReconciliationBucket", "MetricNamespace"):
        assert name in outputs, name
    import re

    parameters = deployed["Parameters"]
    for name in ("NatsCredsSecretArn", "LagoApiKeySecretArn", "HttpApiKeySecretArn", "AlarmTopicArn"):
        pattern = re.compile(parameters[name]["AllowedPattern"])
        assert not pattern.match("my-secret") and not pattern.match("arn:aws:s3:::bucket"), name
    assert re.match(parameters["LagoApiKeySecretArn"]["AllowedPattern"],
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:lago-key-AbCdEf")


def test_cfn_lint_informational_checks_are_clean():
    done = subprocess.run([str(ROOT / ".venv-sam" / "bin" / "cfn-lint"), "--include-checks", "I", "--", "template.yaml"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_log_objects_reach_count_tokens_in_batches_through_a_queue_only_the_bucket_sends_to(deployed):
    resources = deployed["Resources"]
    mapping = next(m["Properties"] for m in of_type(deployed, "AWS::Lambda::EventSourceMapping").values()
                   if m["Properties"]["FunctionName"] == {"Ref": "CountTokensFunction"})
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["InferenceLogObjectQueue", "Arn"]}
    assert mapping["BatchSize"] == {"Ref": "InferenceLogObjectBatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] >= 1  # SQS takes a batch past 10 only with a window
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]  # what the handler answers
    queue = resources["InferenceLogObjectQueue"]["Properties"]
    timeout = resources["CountTokensFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout  # AWS's advice for a queue a function polls
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["InferenceLogObjectDeadLetterQueue", "Arn"]}
    alarmed = {a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
               for a in of_type(deployed, "AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("Namespace") == "AWS/SQS"}
    assert "InferenceLogObjectDeadLetterQueue" in alarmed
    [policy] = of_type(deployed, "AWS::SQS::QueuePolicy").values()
    [grant] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert policy["Properties"]["Queues"] == [{"Ref": "InferenceLogObjectQueue"}]
    assert (grant["Principal"], grant["Action"]) == ({"Service": "s3.amazonaws.com"}, "sqs:SendMessage")
    bucket_name = resources["InferenceLogBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert grant["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"].endswith(f":s3:::{bucket_name}")
    assert grant["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    # S3 checks it may send to the queue when the notification is set: the policy comes first.
    assert "InferenceLogObjectQueuePolicy" in as_list(resources["InferenceLogBucket"]["DependsOn"])


def test_the_log_group_subscription_passes_the_lines_its_filter_pattern_names(deployed):
    subscription = deployed["Resources"]["CountTokensSubscription"]["Properties"]
    assert subscription["FilterPattern"] == {"Ref": "InferenceLogFilterPattern"}
    # Every line by default: Bedrock's log group holds nothing else.
    assert deployed["Parameters"]["InferenceLogFilterPattern"]["Default"] == ""
