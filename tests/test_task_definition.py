"""task-definition.json: valid for RegisterTaskDefinition, accepted by moto's ECS, and in step
with the task definition in infra/videoscan.yaml."""

from __future__ import annotations

import json
import pathlib
import re
import string
import uuid

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from cfnlint.decode import decode

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TASK_DEFINITION = REPO_ROOT / "task-definition.json"
TEMPLATE_PATH = REPO_ROOT / "infra" / "videoscan.yaml"

# Every placeholder of the file, with a value of the shape the stack's outputs give.
PLACEHOLDERS = {
    "STACK_NAME": "videoscan",
    "AWS_REGION": "us-east-1",
    "IMAGE_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/videoscan:0.1.0",
    "TASK_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/videoscan-TaskExecutionRole-ABC",
    "TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/videoscan-TaskRole-ABC",
    "VIDEOSCAN_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/videoscan-JobQueue-ABC",
    "VIDEOSCAN_JOBS_TABLE": "videoscan-JobsTable-ABC",
    "VIDEOSCAN_RESULTS_BUCKET": "videoscan-resultsbucket-abc",
    "VIDEOSCAN_NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:videoscan-NotifyTopic-ABC",
    "VIDEOSCAN_ALLOWED_BUCKETS": "camera-uploads,archive",
    "VIDEOSCAN_HUMAN_MODEL": "",
}


def filled_task_definition(values: dict[str, str] = PLACEHOLDERS) -> dict:
    return json.loads(string.Template(TASK_DEFINITION.read_text()).substitute(values))


# --------------------------------------------------------------------- the file itself


def test_placeholders_are_exactly_the_documented_ones():
    found = set(re.findall(r"\$\{([A-Z0-9_]+)\}", TASK_DEFINITION.read_text()))
    assert found == PLACEHOLDERS.keys()
    # and nothing else looks like one (a typo such as $IMAGE_URI or ${image} would stay in the JSON)
    assert "$" not in json.dumps(filled_task_definition())


def test_filled_file_is_valid_input_for_register_task_definition():
    # Given botocore's own model of the ECS API
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape

    # When the filled file is validated as the input of RegisterTaskDefinition
    report = ParamValidator().validate(filled_task_definition(), shape)

    # Then nothing is missing, unknown or of the wrong type
    assert not report.has_errors(), report.generate_report()


def test_gpu_worker_essentials():
    task = filled_task_definition()
    [container] = task["containerDefinitions"]

    assert task["requiresCompatibilities"] == ["EC2"]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert [c["type"] for c in task["placementConstraints"]] == ["memberOf"]
    assert container["linuxParameters"]["initProcessEnabled"] is True
    assert container["stopTimeout"] == 120  # the most ECS on EC2 allows
    assert container["memoryReservation"] > 0
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["VIDEOSCAN_REQUIRE_GPU"] == "1"
    assert environment["VIDEOSCAN_LOG_FORMAT"] == "json"
    assert environment["VIDEOSCAN_VISIBILITY_TIMEOUT"] == "300"
    # the job in hand is released before ECS's SIGKILL, with time to spare for the release itself
    assert float(environment["VIDEOSCAN_STOP_GRACE_S"]) <= container["stopTimeout"] - 20


# ------------------------------------------------------------------------------ in moto


@pytest.fixture
def cluster_with_instance(embedded_aws):
    """A moto ECS cluster with one registered container instance (run_task needs one on EC2)."""
    ecs = boto3.client("ecs", region_name=embedded_aws.region)
    ec2 = boto3.client("ec2", region_name=embedded_aws.region)
    name = f"td{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=name)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="g5.xlarge")["Instances"][0]
    document = {
        "instanceId": instance["InstanceId"],
        "instanceType": instance["InstanceType"],
        "region": embedded_aws.region,
        "availabilityZone": instance["Placement"]["AvailabilityZone"],
        "imageId": image_id,
        "architecture": "x86_64",
    }
    arn = ecs.register_container_instance(cluster=name, instanceIdentityDocument=json.dumps(document))[
        "containerInstance"
    ]["containerInstanceArn"]
    size_like_g5_xlarge(embedded_aws.region, name, arn)
    return ecs, name


def size_like_g5_xlarge(region: str, cluster: str, container_instance_arn: str) -> None:
    """Gives moto's container instance roughly the memory a g5.xlarge registers (16 GiB less the OS).

    moto registers every container instance with 4,096 CPU units and 7,482 MiB and ignores
    RegisterContainerInstance's totalResources, and it places by the hard `memory` limit where
    ECS places by `memoryReservation`. The API cannot say otherwise, so the test sets the one
    number on moto's in-process backend (the server runs in this process), nothing else.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ecs.models import ecs_backends

    instance = ecs_backends[DEFAULT_ACCOUNT_ID][region].container_instances[cluster][
        container_instance_arn.rsplit("/", 1)[1]
    ]
    for resources in (instance.registered_resources, instance.remaining_resources):
        for resource in resources:
            if resource["name"] == "MEMORY":
                resource["integerValue"] = 15_578


def test_registers_in_moto_and_run_task_accepts_it(cluster_with_instance):
    ecs, cluster = cluster_with_instance

    # When the filled file is registered and run as a one-off task
    registered = ecs.register_task_definition(**filled_task_definition())["taskDefinition"]
    run = ecs.run_task(cluster=cluster, taskDefinition=registered["taskDefinitionArn"], launchType="EC2", count=1)

    # Then ECS kept what matters and placed the task
    assert registered["family"] == "videoscan-worker"
    assert registered["placementConstraints"] == filled_task_definition()["placementConstraints"]
    assert registered["containerDefinitions"][0]["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert run["failures"] == []
    assert [t["taskDefinitionArn"] for t in run["tasks"]] == [registered["taskDefinitionArn"]]


# --------------------------------------------------------- in step with the template


# Conditions of the template that are false with every parameter at its default (empty
# OutputBuckets): the file writes the task definition of that case.
FALSE_AT_DEFAULTS = {"HasOutputBuckets"}


def template_task_definition_as_file() -> dict:
    """The template's TaskDefinition, written the way task-definition.json writes it.

    References become the file's placeholders; parameters that the file writes out literally
    become their defaults; PascalCase keys become the API's camelCase.
    """
    template, matches = decode(TEMPLATE_PATH)
    assert not matches, matches
    resources, parameters = template["Resources"], template["Parameters"]
    refs = {
        "AWS::StackName": "${STACK_NAME}",
        "AWS::Region": "${AWS_REGION}",
        "ImageUri": "${IMAGE_URI}",
        "JobQueue": "${VIDEOSCAN_QUEUE_URL}",
        "JobsTable": "${VIDEOSCAN_JOBS_TABLE}",
        "ResultsBucket": "${VIDEOSCAN_RESULTS_BUCKET}",
        "NotifyTopic": "${VIDEOSCAN_NOTIFY_TOPIC_ARN}",
        "InputBuckets": "${VIDEOSCAN_ALLOWED_BUCKETS}",
        "HumanModelUri": "${VIDEOSCAN_HUMAN_MODEL}",
    }
    get_atts = {
        ("TaskRole", "Arn"): "${TASK_ROLE_ARN}",
        ("TaskExecutionRole", "Arn"): "${TASK_EXECUTION_ROLE_ARN}",
    }

    def resolve(node):
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            name = node["Ref"]
            if name in refs:
                return refs[name]
            if name in parameters:
                return parameters[name]["Default"]
            return resolve(resources[name]["Properties"]["LogGroupName"])  # the only other Ref: LogGroup
        if set(node) == {"Fn::GetAtt"}:
            return get_atts[tuple(node["Fn::GetAtt"])]
        if set(node) == {"Fn::If"}:
            # The file is the template at its defaults, where these conditions are false.
            condition, _, when_false = node["Fn::If"]
            assert condition in FALSE_AT_DEFAULTS, condition
            return resolve(when_false)
        if set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: refs[m.group(1)], node["Fn::Sub"])
        if set(node) == {"Fn::Join"}:
            delimiter, items = node["Fn::Join"]
            items = resolve(items)
            return items if isinstance(items, str) else delimiter.join(items)
        return {key[0].lower() + key[1:]: resolve(value) for key, value in node.items()}

    properties = resolve(resources["TaskDefinition"]["Properties"])
    for container in properties["containerDefinitions"]:
        for variable in container["environment"]:
            variable["value"] = str(variable["value"])  # numbers from parameter defaults
    return properties


def raw_file_task_definition() -> dict:
    return json.loads(TASK_DEFINITION.read_text())


def test_same_gpu_requirement_and_placement_constraint_as_the_template():
    in_template, in_file = template_task_definition_as_file(), raw_file_task_definition()

    assert in_file["placementConstraints"] == in_template["placementConstraints"]
    assert [c["resourceRequirements"] for c in in_file["containerDefinitions"]] == [
        c["resourceRequirements"] for c in in_template["containerDefinitions"]
    ]


def test_same_environment_names_as_the_template():
    in_template, in_file = template_task_definition_as_file(), raw_file_task_definition()

    def names(task):
        return [[e["name"] for e in c["environment"]] for c in task["containerDefinitions"]]

    assert names(in_file) == names(in_template)


def test_same_log_group_naming_as_the_template():
    in_template, in_file = template_task_definition_as_file(), raw_file_task_definition()

    def logging_of(task):
        return [c["logConfiguration"] for c in task["containerDefinitions"]]

    assert logging_of(in_file) == logging_of(in_template)
    assert logging_of(in_file)[0]["options"]["awslogs-group"] == "/videoscan/${STACK_NAME}/worker"


def test_file_is_the_template_task_definition_with_placeholders():
    # Everything else agrees too: roles, network mode, stop timeout, init, memory, values.
    assert raw_file_task_definition() == template_task_definition_as_file()
