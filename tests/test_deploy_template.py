"""infra/videoscan.yaml: cfn-lint clean, deployed into moto's CloudFormation over HTTP, least privilege,
each point of issue 9's review against AWS's documentation, and a real `videoscan run --drain`
configured only from the stack's outputs."""

from __future__ import annotations

import json
import re
import os
import pathlib
import subprocess
import sys
import uuid

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode

from aws_semantics import event_matches, metric_math, policy_allows
from moto_stack import MOTO_UNIMPLEMENTED, DeployedStack, deploy, lift_tls_only_bucket_policy

# moto warns about each resource type it skips; the test below asserts exactly which ones.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse .* not supported by moto:UserWarning")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "infra" / "videoscan.yaml"
IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/videoscan:test"

# The worker's AWS calls, the only actions its task role may have (sqs:SendMessage is for
# `videoscan submit`, which runs elsewhere).
WORKER_ACTIONS = frozenset(
    {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",  # of the dead-letter queue, named by the redrive policy
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "sns:Publish",
        "ecs:UpdateTaskProtection",
    }
)

# Stack output -> the worker's environment variable it configures.
OUTPUT_ENV = {
    "QueueUrl": "VIDEOSCAN_QUEUE_URL",
    "JobsTableName": "VIDEOSCAN_JOBS_TABLE",
    "ResultsBucketName": "VIDEOSCAN_RESULTS_BUCKET",
    "NotifyTopicArn": "VIDEOSCAN_NOTIFY_TOPIC_ARN",
    "AllowedBuckets": "VIDEOSCAN_ALLOWED_BUCKETS",
    "ServiceName": "VIDEOSCAN_SERVICE_NAME",
}


def load_template() -> dict:
    template, matches = decode(TEMPLATE_PATH)
    assert not matches, matches
    return template


# --------------------------------------------------------------------------- cfn-lint


def test_cfn_lint_reports_no_errors_and_no_warnings():
    # Given the template, when cfn-lint checks it for the regions it is documented for
    matches = lint_file(TEMPLATE_PATH, config=ManualArgs(regions=["us-east-1", "us-west-2", "eu-west-1"]))

    # Then there is nothing to report: a new warning must be fixed, or ignored in the
    # template's Metadata (cfn-lint: config: ignore_checks) with a comment saying why.
    assert [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches] == []


# ------------------------------------------------------------------- static least privilege


def task_role_statements(template: dict) -> list[dict]:
    policies = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": "TaskRole"} in r["Properties"]["Roles"]
    ]
    assert len(policies) == 1, "the task role has exactly one policy"
    role = template["Resources"]["TaskRole"]["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    return policies[0]["PolicyDocument"]["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_task_role_allows_only_the_workers_calls_on_its_own_resources():
    statements = task_role_statements(load_template())

    actions = {a for s in statements for a in as_list(s["Action"])}
    assert all(s["Effect"] == "Allow" for s in statements)
    assert not any("*" in a for a in actions), actions
    assert actions <= WORKER_ACTIONS, actions - WORKER_ACTIONS
    assert "sqs:SendMessage" not in actions
    for statement in statements:
        assert "NotAction" not in statement and "NotResource" not in statement
        assert statement["Resource"] != "*" and "*" not in as_list(statement["Resource"]), statement


# ------------------------------------------------------------------------ deploy in moto


@pytest.fixture(scope="module")
def network(embedded_aws):
    """An existing VPC with two subnets, as the operator's account would have."""
    ec2 = boto3.client("ec2", region_name=embedded_aws.region)
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"{embedded_aws.region}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    return vpc_id, subnets


@pytest.fixture(scope="module")
def stack(embedded_aws, network) -> DeployedStack:
    """The template deployed into moto over HTTP, with the skipped resources replayed."""
    name = f"vs{uuid.uuid4().hex[:8]}"
    input_bucket, output_bucket = f"{name}-input", f"{name}-delivery"
    for bucket in (input_bucket, output_bucket):
        boto3.client("s3", region_name=embedded_aws.region).create_bucket(Bucket=bucket)
    vpc_id, subnets = network
    # The optional parameters take their non-default values here, so the conditional parts
    # are deployed; the defaults are checked on the template itself.
    parameters = {
        "VpcId": vpc_id,
        "SubnetIds": ",".join(subnets),
        "ImageUri": IMAGE_URI,
        "InputBuckets": input_bucket,
        "OutputBuckets": output_bucket,
        # Given explicitly: moto does not split a CommaDelimitedList's default (CloudFormation does).
        "InstanceTypes": load_template()["Parameters"]["InstanceTypes"]["Default"],
        "OnDemandPercentage": "25",
        "EnableSessionManager": "true",
    }
    deployed = deploy(embedded_aws.region, name, TEMPLATE_PATH.read_text(), load_template(), parameters)
    deployed.http_write_denied = lift_tls_only_bucket_policy(deployed)
    return deployed


def test_stack_reaches_create_complete(stack):
    assert stack.description["StackStatus"] == "CREATE_COMPLETE"
    assert {r["ResourceStatus"] for r in stack.resources.values()} == {"CREATE_COMPLETE"}


def test_resource_types_moto_does_not_implement_are_exactly_the_listed_ones(stack):
    # Given every resource of the template, when moto's CloudFormation has created the stack
    declared = {logical_id: r["Type"] for logical_id, r in stack.template["Resources"].items()}
    skipped = {declared[logical_id] for logical_id in declared.keys() - stack.resources.keys()}

    # Then what it skipped is the listed set: nothing else is silently missing, and the list
    # shrinks when moto learns a type.
    assert skipped == MOTO_UNIMPLEMENTED
    assert len(stack.anonymous_resources) == len(declared.keys() - stack.resources.keys())
    assert all(t not in MOTO_UNIMPLEMENTED for t in (r["ResourceType"] for r in stack.resources.values()))


def test_outputs_name_every_resource_an_operator_needs(stack):
    assert {
        "QueueUrl",
        "DeadLetterQueueUrl",
        "JobsTableName",
        "ResultsBucketName",
        "NotifyTopicArn",
        "ClusterName",
        "ServiceName",
        "LogGroupName",
        "TaskDefinitionArn",
    } <= stack.outputs.keys()


def test_job_queue_has_the_dead_letter_queue_long_polling_and_the_visibility_timeout(stack):
    sqs = stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.outputs["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=stack.outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]

    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    assert attributes["VisibilityTimeout"] == "300"
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "20"
    # The replayed TLS-only queue policy landed on the queue.
    policy = json.loads(attributes["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_jobs_table_is_keyed_by_job_id_on_demand(stack):
    table = stack.client("dynamodb").describe_table(TableName=stack.outputs["JobsTableName"])["Table"]

    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "job_id", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_results_bucket_topic_and_log_group_exist(stack):
    s3 = stack.client("s3")
    bucket = stack.outputs["ResultsBucketName"]
    s3.head_bucket(Bucket=bucket)
    assert stack.http_write_denied, "the TLS-only bucket policy let a plain-HTTP PutObject through"
    stack.client("sns").get_topic_attributes(TopicArn=stack.outputs["NotifyTopicArn"])

    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix=stack.outputs["LogGroupName"])["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
        (f"/videoscan/{stack.name}/worker", 30)
    ]


def test_cluster_service_and_task_definition_exist_and_agree(stack):
    ecs = stack.client("ecs")
    cluster = stack.outputs["ClusterName"]
    service_name = stack.outputs["ServiceName"]

    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "ACTIVE"
    service = ecs.describe_services(cluster=cluster, services=[service_name])["services"][0]
    assert service["serviceName"] == f"{stack.name}-worker"
    task_definition = ecs.describe_task_definition(taskDefinition=stack.outputs["TaskDefinitionArn"])["taskDefinition"]
    assert task_definition["family"] == f"{stack.name}-worker"
    [container] = task_definition["containerDefinitions"]
    assert container["image"] == IMAGE_URI
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert container["logConfiguration"]["options"]["awslogs-group"] == stack.outputs["LogGroupName"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["VIDEOSCAN_SERVICE_NAME"] == service_name
    for output, variable in OUTPUT_ENV.items():
        assert environment[variable] == stack.outputs[output], variable


def test_capacity_provider_is_the_clusters_default_with_managed_scaling(stack):
    ecs = stack.client("ecs")
    cluster = ecs.describe_clusters(clusters=[stack.outputs["ClusterName"]])["clusters"][0]
    provider = stack.physical_id("CapacityProvider")

    assert cluster["capacityProviders"] == [provider]
    assert cluster["defaultCapacityProviderStrategy"] == [{"capacityProvider": provider, "weight": 1, "base": 0}]
    [described] = ecs.describe_capacity_providers(capacityProviders=[provider])["capacityProviders"]
    asg = described["autoScalingGroupProvider"]
    assert asg["managedScaling"]["status"] == "ENABLED"
    assert asg["managedTerminationProtection"] == "ENABLED"
    groups = stack.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[stack.physical_id("AutoScalingGroup")]
    )["AutoScalingGroups"]
    assert [(g["MinSize"], g["NewInstancesProtectedFromScaleIn"]) for g in groups] == [(0, True)]


def test_service_scales_on_backlog_per_task_and_from_and_to_zero(stack):
    aas = stack.client("application-autoscaling")
    resource_id = f"service/{stack.outputs['ClusterName']}/{stack.outputs['ServiceName']}"

    [target] = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource_id])["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 4)
    policies = {
        p["PolicyName"].removeprefix(f"{stack.name}-"): p
        for p in aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource_id)["ScalingPolicies"]
    }
    assert policies.keys() == {"backlog-per-task", "start-from-zero", "scale-to-zero"}

    alarms = {
        a["AlarmName"].removeprefix(f"{stack.name}-"): a
        for a in stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=stack.name)["MetricAlarms"]
    }
    assert alarms["JobsWaitingWithNoneInFlightAlarm"]["AlarmActions"] == [policies["start-from-zero"]["PolicyARN"]]
    assert alarms["QueueIdleAlarm"]["AlarmActions"] == [policies["scale-to-zero"]["PolicyARN"]]
    assert alarms["DeadLetterQueueNotEmptyAlarm"]["Dimensions"] == [
        {"Name": "QueueName", "Value": stack.outputs["DeadLetterQueueUrl"].rsplit("/", 1)[1]}
    ]
    steps = {
        name: policies[name]["StepScalingPolicyConfiguration"] for name in ("start-from-zero", "scale-to-zero")
    }
    assert [(s["AdjustmentType"], s["StepAdjustments"][0]["ScalingAdjustment"]) for s in steps.values()] == [
        ("ExactCapacity", 1),
        ("ExactCapacity", 0),
    ]


def test_deployed_task_role_policy_names_only_this_stacks_resources(stack):
    iam = stack.client("iam")
    role_name = stack.physical_id("TaskRole")
    documents = [
        iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    ]
    assert len(documents) == 1
    by_sid = {s["Sid"]: as_list(s["Resource"]) for s in documents[0]["Statement"]}
    input_bucket = stack.parameters["InputBuckets"]

    allowed = [input_bucket, stack.parameters["OutputBuckets"]]
    assert by_sid["JobBucketObjects"] == [f"arn:aws:s3:::{bucket}/*" for bucket in allowed]
    assert by_sid["ListJobBuckets"] == [f"arn:aws:s3:::{bucket}" for bucket in allowed]
    assert by_sid["WriteResults"] == [f"arn:aws:s3:::{stack.outputs['ResultsBucketName']}/*"]
    assert by_sid["PublishCompletionEvents"] == [stack.outputs["NotifyTopicArn"]]
    assert by_sid["ConsumeJobQueue"][0].endswith(":" + stack.outputs["QueueUrl"].rsplit("/", 1)[1])
    assert by_sid["JobRecords"][0].endswith(":table/" + stack.outputs["JobsTableName"])
    assert by_sid["ScaleInProtectionOfOwnTask"][0].endswith(f":task/{stack.outputs['ClusterName']}/*")


def test_dashboard_shows_backlog_tasks_jobs_throughput_gpu_and_dead_letter_queue(stack):
    body = stack.client("cloudwatch").get_dashboard(DashboardName=stack.outputs["DashboardName"])["DashboardBody"]
    widgets = json.loads(body)["widgets"]  # the substituted body is valid JSON

    shown = {
        (m[0], m[1])
        for w in widgets
        for m in w["properties"]["metrics"]
        if isinstance(m[0], str)
    }
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("ECS/ContainerInsights", "RunningTaskCount"),
        ("videoscan", "JobsSucceeded"),
        ("videoscan", "JobsFailed"),
        ("videoscan", "JobDuration"),
        ("videoscan", "QueueWait"),
        ("videoscan", "FramesAnalyzed"),
        ("videoscan", "FramesPerSecond"),
        ("videoscan", "GpuUtilization"),
        ("videoscan", "GpuMemoryUsed"),
    } <= shown
    dlq_name = stack.outputs["DeadLetterQueueUrl"].rsplit("/", 1)[1]
    service_name = stack.outputs["ServiceName"]
    assert dlq_name in body and service_name in body and "${" not in body
    for widget in widgets:
        for metric in widget["properties"]["metrics"]:
            if metric[0] == "videoscan":  # the worker's EMF dimension
                assert metric[2:4] == ["Service", service_name]


# ------------------------------------------------- against AWS's documentation (issue 9, items 1-9)


def deploy_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("## Deploy on AWS")
    return readme[start : readme.index("\n## ", start + 1)]


def alarms_of(stack: DeployedStack) -> dict[str, dict]:
    described = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=stack.name)["MetricAlarms"]
    return {a["AlarmName"].removeprefix(f"{stack.name}-"): a for a in described}


def scaling_policies_of(stack: DeployedStack) -> dict[str, dict]:
    resource_id = f"service/{stack.outputs['ClusterName']}/{stack.outputs['ServiceName']}"
    described = stack.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=resource_id
    )["ScalingPolicies"]
    return {p["PolicyARN"]: p for p in described}


def metrics_by_id(metrics: list[dict]) -> tuple[dict[str, dict], str]:
    """The MetricStat metrics by id, and the one expression that the alarm or policy uses."""
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in metrics if "MetricStat" in m}
    [expression] = [m["Expression"] for m in metrics if m.get("ReturnData", True) and "Expression" in m]
    return stats, expression


def test_1_readme_creates_the_ecs_service_linked_role_first_and_recovers_from_rollback():
    section = deploy_section()
    create_role = section.index("aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com")
    assert create_role < section.index("aws cloudformation deploy")
    # "already exists" is no failure: the check that follows confirms the role is there
    assert "get-role --role-name AWSServiceRoleForECS" in section[create_role:]
    recovery = section.index("ROLLBACK_COMPLETE")
    assert "aws cloudformation delete-stack" in section[recovery:]


def test_2_every_bucket_a_job_may_name_is_readable_and_writable_by_the_task_role(stack):
    # Given the buckets the worker lets a job read from and write to (contract:
    # VIDEOSCAN_ALLOWED_BUCKETS, plus the results bucket for writes)
    task = stack.client("ecs").describe_task_definition(taskDefinition=stack.outputs["TaskDefinitionArn"])
    environment = {e["name"]: e["value"] for e in task["taskDefinition"]["containerDefinitions"][0]["environment"]}
    allowed = environment["VIDEOSCAN_ALLOWED_BUCKETS"].split(",")
    assert sorted(allowed) == sorted([stack.parameters["InputBuckets"], stack.parameters["OutputBuckets"]])

    # When the deployed task role policy is evaluated for each
    iam = stack.client("iam")
    role = stack.physical_id("TaskRole")
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]

    # Then S3 allows what the worker allows: no job it accepts ends ACCESS_DENIED at the upload
    for bucket in allowed:
        for action in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"):
            assert policy_allows(document, action, f"arn:aws:s3:::{bucket}/cam7/detections.json"), (action, bucket)
        assert policy_allows(document, "s3:ListBucket", f"arn:aws:s3:::{bucket}")
    assert policy_allows(document, "s3:PutObject", f"arn:aws:s3:::{stack.outputs['ResultsBucketName']}/results/x")
    assert not policy_allows(document, "s3:PutObject", "arn:aws:s3:::some-other-bucket/x")


def test_3_start_from_zero_is_gated_on_sqs_metrics_alone(stack):
    alarm = alarms_of(stack)["JobsWaitingWithNoneInFlightAlarm"]
    stats, expression = metrics_by_id(alarm["Metrics"])

    assert {m["Namespace"] for m in stats.values()} == {"AWS/SQS"}
    names = {i: m["MetricName"] for i, m in stats.items()}
    visible, inflight = (
        next(i for i, n in names.items() if n == wanted)
        for wanted in ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible")
    )

    def breaches(**values):
        return metric_math(expression, **{visible: values["visible"], inflight: values["inflight"]}) > alarm["Threshold"]

    assert breaches(visible=3, inflight=0)
    assert not breaches(visible=3, inflight=1)  # a task works: target tracking's business
    assert not breaches(visible=0, inflight=0)
    assert not breaches(visible=None, inflight=None)  # an inactive queue publishes nothing


def test_4_step_scaling_alarms_never_sit_on_a_step_bound(stack):
    policies = scaling_policies_of(stack)
    stepped = [a for a in alarms_of(stack).values() if any(arn in policies for arn in a["AlarmActions"])]
    assert len(stepped) == 2

    for alarm in stepped:
        assert alarm["ComparisonOperator"] in {"GreaterThanThreshold", "LessThanThreshold"}, alarm["AlarmName"]
        [arn] = alarm["AlarmActions"]
        steps = policies[arn]["StepScalingPolicyConfiguration"]["StepAdjustments"]
        bounds = {s[k] for s in steps for k in ("MetricIntervalLowerBound", "MetricIntervalUpperBound") if k in s}
        for count in range(0, 100):  # the alarms' metrics are whole counts
            relative = count - alarm["Threshold"]
            assert relative not in bounds, (alarm["AlarmName"], count)
            breaching = relative > 0 if alarm["ComparisonOperator"] == "GreaterThanThreshold" else relative < 0
            covering = [
                s for s in steps
                if s.get("MetricIntervalLowerBound", float("-inf")) < relative < s.get("MetricIntervalUpperBound", float("inf"))
            ]
            assert len(covering) == (1 if breaching else 0), (alarm["AlarmName"], count, covering)


def test_5_service_leaves_its_desired_count_to_autoscaling():
    service = load_template()["Resources"]["Service"]["Properties"]
    assert "DesiredCount" not in service  # else every stack update resets it


def test_6_tracking_counts_jobs_in_flight_and_never_scales_in(stack):
    [tracking] = [
        p["TargetTrackingScalingPolicyConfiguration"]
        for p in scaling_policies_of(stack).values()
        if p["PolicyType"] == "TargetTrackingScaling"
    ]
    assert tracking["DisableScaleIn"] is True
    stats, expression = metrics_by_id(tracking["CustomizedMetricSpecification"]["Metrics"])
    ids = {m["MetricName"]: i for i, m in stats.items()}

    def per_task(visible, inflight, running):
        return metric_math(
            expression,
            **{ids["ApproximateNumberOfMessagesVisible"]: visible,
               ids["ApproximateNumberOfMessagesNotVisible"]: inflight,
               ids["RunningTaskCount"]: running},
        )

    assert per_task(visible=0, inflight=1, running=1) == 1  # one busy task, nothing waiting
    assert per_task(visible=4, inflight=2, running=2) == 3


def test_7_teardown_names_the_auto_scaling_group_and_unjoined_instances_raise_an_alarm(stack):
    group_name = stack.outputs["AutoScalingGroupName"]
    [group] = stack.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
        "AutoScalingGroups"
    ]
    assert group_name == stack.physical_id("AutoScalingGroup")
    # the alarm's metric exists only if the group collects it (moto does not keep this setting)
    [collected] = stack.template["Resources"]["AutoScalingGroup"]["Properties"]["MetricsCollection"]
    assert "GroupInServiceInstances" in collected["Metrics"]

    alarm = alarms_of(stack)["InstancesNotInClusterAlarm"]
    stats, expression = metrics_by_id(alarm["Metrics"])
    dimensions = {m["MetricName"]: m["Dimensions"] for m in stats.values()}
    assert dimensions["GroupInServiceInstances"] == [{"Name": "AutoScalingGroupName", "Value": group_name}]
    assert dimensions["ContainerInstanceCount"] == [{"Name": "ClusterName", "Value": stack.outputs["ClusterName"]}]
    assert alarm["AlarmActions"] == [stack.outputs["AlarmTopicArn"]]
    ids = {m["MetricName"]: i for i, m in stats.items()}
    unregistered = metric_math(expression, **{ids["GroupInServiceInstances"]: 2, ids["ContainerInstanceCount"]: 1})
    assert unregistered > alarm["Threshold"] > metric_math(
        expression, **{ids["GroupInServiceInstances"]: 2, ids["ContainerInstanceCount"]: 2}
    )

    section = deploy_section()
    unprotect = section.index("set-instance-protection")
    assert "--no-protected-from-scale-in" in section[unprotect:unprotect + 400]
    assert "AutoScalingGroupName" in section[:unprotect]
    assert unprotect < section.rindex("aws cloudformation delete-stack")


def stopped_task_event(cluster_arn: str, exit_code: int | None, stop_code: str = "EssentialContainerExited") -> dict:
    """An "ECS Task State Change" event as EventBridge delivers it (fields the rule reads)."""
    container = {"name": "worker", "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "detail": {
            "clusterArn": cluster_arn,
            "lastStatus": "STOPPED",
            "stopCode": stop_code,
            "containers": [container],
            "taskArn": f"{cluster_arn.replace(':cluster/', ':task/')}/abc",
        },
    }


def test_8_waiting_unprocessed_jobs_and_failed_tasks_reach_the_alarm_topic(stack):
    topic = stack.outputs["AlarmTopicArn"]

    # The age alarm: the oldest job waited past MaxJobWaitMinutes with nothing in flight
    alarm = alarms_of(stack)["JobsWaitingUnprocessedAlarm"]
    stats, expression = metrics_by_id(alarm["Metrics"])
    ids = {m["MetricName"]: i for i, m in stats.items()}
    assert alarm["AlarmActions"] == [topic] and alarm["Threshold"] == 60

    def waited(age_s, inflight):
        return metric_math(
            expression, **{ids["ApproximateAgeOfOldestMessage"]: age_s, ids["ApproximateNumberOfMessagesNotVisible"]: inflight}
        )

    assert waited(age_s=2 * 3600, inflight=0) > alarm["Threshold"]
    assert waited(age_s=2 * 3600, inflight=1) < alarm["Threshold"]  # a long job at work
    assert waited(age_s=10 * 60, inflight=0) < alarm["Threshold"]

    # The rule: this cluster's tasks that stop non-zero or never start, to the alarm topic
    events = stack.client("events")
    rule = events.describe_rule(Name=stack.physical_id("TaskFailedRule"))
    pattern = json.loads(rule["EventPattern"])
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == topic
    cluster_arn = stack.client("ecs").describe_clusters(clusters=[stack.outputs["ClusterName"]])["clusters"][0][
        "clusterArn"
    ]
    assert event_matches(pattern, stopped_task_event(cluster_arn, exit_code=1))
    assert event_matches(pattern, stopped_task_event(cluster_arn, exit_code=137))
    assert event_matches(pattern, stopped_task_event(cluster_arn, None, stop_code="TaskFailedToStart"))
    assert not event_matches(pattern, stopped_task_event(cluster_arn, exit_code=0))  # scale-in, deployment
    assert not event_matches(pattern, stopped_task_event(cluster_arn.replace(stack.name, "other"), exit_code=1))

    # The topic lets EventBridge (this rule) and CloudWatch alarms publish
    policy = json.loads(stack.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    publishers = {s["Principal"]["Service"]: s["Condition"] for s in policy["Statement"] if s["Action"] == "sns:Publish"}
    assert publishers["events.amazonaws.com"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
    assert "cloudwatch.amazonaws.com" in publishers


def test_9_several_gpu_instance_types_with_an_optional_spot_share(stack):
    [group] = stack.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[stack.outputs["AutoScalingGroupName"]]
    )["AutoScalingGroups"]
    policy = group["MixedInstancesPolicy"]
    default_types = load_template()["Parameters"]["InstanceTypes"]["Default"].split(",")

    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == default_types
    assert len(default_types) >= 3
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 25
    launch_template = load_template()["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert "InstanceType" not in launch_template  # the overrides choose


def test_9_the_task_fits_the_smallest_instance_type_and_its_placement_constraint(stack):
    types = load_template()["Parameters"]["InstanceTypes"]["Default"].split(",")
    described = stack.client("ec2").describe_instance_types(InstanceTypes=types)["InstanceTypes"]
    task = stack.client("ecs").describe_task_definition(taskDefinition=stack.outputs["TaskDefinitionArn"])[
        "taskDefinition"
    ]
    [container] = task["containerDefinitions"]
    # moto's CloudFormation drops placement constraints; the template's own is checked
    [constraint] = stack.template["Resources"]["TaskDefinition"]["Properties"]["PlacementConstraints"]
    families = re.findall(r"ecs\.instance-type =~ ([\w.*]+)", constraint["Expression"])

    for instance in described:
        assert instance["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
        assert [g["Manufacturer"] for g in instance["GpuInfo"]["Gpus"]] == ["NVIDIA"]
        # ECS registers the instance's memory less what the OS and agent keep (about 1 GiB at most)
        assert container["memory"] <= instance["MemoryInfo"]["SizeInMiB"] - 1024, instance["InstanceType"]
        assert container.get("cpu", 0) <= instance["VCpuInfo"]["DefaultVCpus"] * 1024
        assert any(re.fullmatch(family, instance["InstanceType"]) for family in families), instance["InstanceType"]


def test_session_manager_access_is_optional():
    # moto's CloudFormation ignores ManagedPolicyArns, so this is read from the template
    template = load_template()
    assert template["Parameters"]["EnableSessionManager"]["Default"] == "false"
    assert template["Conditions"]["WithSessionManager"] == {"Fn::Equals": [{"Ref": "EnableSessionManager"}, "true"]}
    managed = template["Resources"]["InstanceRole"]["Properties"]["ManagedPolicyArns"]
    optional = [p["Fn::If"] for p in managed if isinstance(p, dict) and "Fn::If" in p]
    assert optional == [
        ["WithSessionManager", {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"},
         {"Ref": "AWS::NoValue"}]
    ]


# --------------------------------------------------------------- the worker from the outputs


def write_clip(path: pathlib.Path, frames: int = 20, size: tuple[int, int] = (160, 120)) -> None:
    """A short real MPEG-4 clip: a white rectangle moving across a dark background."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 30, dtype=np.uint8)
        x = 5 + i * 5
        cv2.rectangle(frame, (x, 40), (x + 30, 90), (255, 255, 255), thickness=-1)
        writer.write(frame)
    writer.release()
    assert path.stat().st_size > 0


def test_worker_runs_from_stack_outputs(stack, tmp_path):
    # Given a real video in the stack's input bucket and two contract messages sent by plain
    # boto3: one with the default output, one with its output in one of OutputBuckets
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    input_bucket, delivery_bucket = stack.parameters["InputBuckets"], stack.parameters["OutputBuckets"]
    s3 = stack.client("s3")
    s3.upload_file(str(clip), input_bucket, "videos/clip.mp4")
    for output in ({}, {"output": f"s3://{delivery_bucket}/cam7/"}):
        stack.client("sqs").send_message(
            QueueUrl=stack.outputs["QueueUrl"],
            MessageBody=json.dumps({"video": f"s3://{input_bucket}/videos/clip.mp4", "detectors": ["stub"], **output}),
        )

    # When a worker configured only from the stack's outputs drains the queue
    env = dict(os.environ)
    env.update({variable: stack.outputs[output] for output, variable in OUTPUT_ENV.items()})
    env.update({"VIDEOSCAN_LOG_FORMAT": "json", "VIDEOSCAN_REQUIRE_GPU": "0", "AWS_REGION": stack.region})
    run = subprocess.run(
        [sys.executable, "-m", "worker", "run", "--drain"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then both jobs succeeded and their results exist in the results and the delivery bucket
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    items = stack.client("dynamodb").scan(TableName=stack.outputs["JobsTableName"])["Items"]
    jobs = [{k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in items]
    assert [job["status"] for job in jobs] == ["SUCCEEDED", "SUCCEEDED"], (jobs, run.stderr[-4000:])
    locations = sorted(job["result_uri"].removeprefix("s3://").split("/", 1) for job in jobs)
    assert sorted(bucket for bucket, _ in locations) == sorted([stack.outputs["ResultsBucketName"], delivery_bucket])
    for bucket, key in locations:
        assert key.endswith("detections.json")
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
