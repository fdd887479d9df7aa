"""infra/videoscan.yaml deployed into moto's CloudFormation over HTTP, with the resource types
moto's CloudFormation skips created through their own service APIs (replayed), and what it
takes to resolve the template's references against the deployed stack."""

from __future__ import annotations

import json
import re

import boto3
from botocore.exceptions import ClientError

# Resource types in the template that moto's CloudFormation does not implement (it skips them
# with a warning). Each is replayed below through its own service API in moto instead, with
# the stack's real values, so its properties are still checked by botocore and by moto.
MOTO_UNIMPLEMENTED = frozenset(
    {
        "AWS::SQS::QueuePolicy",
        "AWS::S3::BucketPolicy",
        "AWS::CloudWatch::Alarm",
        "AWS::ECS::CapacityProvider",
        "AWS::ECS::ClusterCapacityProviderAssociations",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::SNS::TopicPolicy",
    }
)


class DeployedStack:
    """The stack created in moto, with what it takes to resolve the template against it."""

    def __init__(self, region: str, name: str, template: dict, parameters: dict[str, str]):
        self.region = region
        self.name = name
        self.template = template
        self.parameters = parameters
        self.cfn = self.client("cloudformation")
        self.description = self.cfn.describe_stacks(StackName=name)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in self.description.get("Outputs", [])}
        described = self.cfn.describe_stack_resources(StackName=name)["StackResources"]
        self.resources = {r["LogicalResourceId"]: r for r in described if "LogicalResourceId" in r}
        # moto reports each resource it skipped as an entry with neither id nor type.
        self.anonymous_resources = [r for r in described if "LogicalResourceId" not in r]
        self.replayed: dict[str, str] = {}  # logical id -> physical id, for the replayed resources
        self.scalable_targets: dict[str, dict] = {}

    def client(self, service: str):
        return boto3.client(service, region_name=self.region)

    def physical_id(self, logical_id: str) -> str:
        if logical_id in self.replayed:
            return self.replayed[logical_id]
        return self.resources[logical_id]["PhysicalResourceId"]

    # A small intrinsic-function resolver: enough for this template's skipped resources.
    def ref(self, name: str):
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::AccountId": self.description["StackId"].split(":")[4],
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template["Parameters"]:
            value = self.parameters.get(name, self.template["Parameters"][name].get("Default"))
            return value.split(",") if self.template["Parameters"][name]["Type"] == "CommaDelimitedList" else value
        return self.physical_id(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        physical = self.physical_id(logical_id)
        kind = self.template["Resources"][logical_id]["Type"]
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return physical.rsplit("/", 1)[1]
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return self.client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{physical}"
        if kind == "AWS::ECS::Service" and attribute == "Name":
            return physical.rsplit("/", 1)[1]
        if kind == "AWS::Events::Rule" and attribute == "Arn":
            return self.client("events").describe_rule(Name=physical)["Arn"]
        raise NotImplementedError(f"{logical_id}.{attribute}")

    def resolve(self, node):
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            return self.ref(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            logical_id, attribute = node["Fn::GetAtt"]
            return self.get_att(logical_id, attribute)
        if set(node) == {"Fn::Sub"}:
            text = node["Fn::Sub"]
            for token in set(re.findall(r"\$\{([^}!]+)\}", text)):
                value = self.get_att(*token.split(".", 1)) if "." in token else self.ref(token)
                text = text.replace("${" + token + "}", str(value))
            return text
        if set(node) == {"Fn::Join"}:
            delimiter, items = node["Fn::Join"]
            resolved = self.resolve(items)
            return delimiter.join(str(i) for i in (resolved if isinstance(resolved, list) else [resolved]))
        return {key: self.resolve(value) for key, value in node.items()}


def camel(node):
    """CloudFormation's PascalCase keys as the ECS API's camelCase."""
    if isinstance(node, list):
        return [camel(item) for item in node]
    if isinstance(node, dict):
        return {key[0].lower() + key[1:]: camel(value) for key, value in node.items()}
    return node


def replay(stack: DeployedStack, logical_id: str) -> None:
    """Creates one resource that moto's CloudFormation skips through its service's own API."""
    resource = stack.template["Resources"][logical_id]
    kind, raw = resource["Type"], resource["Properties"]
    if kind == "AWS::ApplicationAutoScaling::ScalingPolicy":
        target = stack.scalable_targets[raw["ScalingTargetId"]["Ref"]]
        props = stack.resolve({k: v for k, v in raw.items() if k != "ScalingTargetId"})
        response = stack.client("application-autoscaling").put_scaling_policy(
            ServiceNamespace=target["ServiceNamespace"],
            ResourceId=target["ResourceId"],
            ScalableDimension=target["ScalableDimension"],
            **props,
        )
        stack.replayed[logical_id] = response["PolicyARN"]
        return
    props = stack.resolve(raw)
    if kind == "AWS::SQS::QueuePolicy":
        for url in props["Queues"]:
            stack.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    elif kind == "AWS::SNS::TopicPolicy":
        for topic in props["Topics"]:
            stack.client("sns").set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
            )
    elif kind == "AWS::S3::BucketPolicy":
        stack.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
    elif kind == "AWS::CloudWatch::Alarm":
        stack.client("cloudwatch").put_metric_alarm(AlarmName=f"{stack.name}-{logical_id}", **props)
    elif kind == "AWS::ECS::CapacityProvider":
        name = f"{stack.name}-{logical_id}"
        stack.client("ecs").create_capacity_provider(name=name, **camel(props))
        stack.replayed[logical_id] = name
    elif kind == "AWS::ECS::ClusterCapacityProviderAssociations":
        stack.client("ecs").put_cluster_capacity_providers(**camel(props))
    elif kind == "AWS::ApplicationAutoScaling::ScalableTarget":
        stack.client("application-autoscaling").register_scalable_target(**props)
        stack.scalable_targets[logical_id] = props
    else:
        raise AssertionError(f"no replay for {kind}")


# Dependencies first: a capacity provider before its association, targets before policies,
# policies before the alarms that name them.
REPLAY_ORDER = [
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::ECS::CapacityProvider",
    "AWS::ECS::ClusterCapacityProviderAssociations",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
]


def deploy(region: str, name: str, template_text: str, template: dict, parameters: dict[str, str]) -> DeployedStack:
    """Creates the stack in moto, waits for it, then replays what moto's CloudFormation skipped."""
    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(
        StackName=name,
        TemplateBody=template_text,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    deployed = DeployedStack(region, name, template, parameters)
    skipped = sorted(
        (REPLAY_ORDER.index(r["Type"]), logical_id)
        for logical_id, r in deployed.template["Resources"].items()
        if logical_id not in deployed.resources and r["Type"] in REPLAY_ORDER
    )
    for _, logical_id in skipped:
        replay(deployed, logical_id)
    return deployed


def lift_tls_only_bucket_policy(stack: DeployedStack) -> bool:
    """Whether the results bucket refused a plain-HTTP write; the policy is then removed.

    moto enforces bucket policies and the embedded stack speaks plain HTTP, so the TLS-only
    policy must refuse this write (aws:SecureTransport is false), and it would refuse the
    worker's writes below too: the test lifts it once it has seen it work.
    """
    s3 = stack.client("s3")
    bucket = stack.outputs["ResultsBucketName"]
    assert stack.client("s3").meta.endpoint_url.startswith("http://")
    try:
        s3.put_object(Bucket=bucket, Key="plain-http-probe", Body=b"x")
        denied = False
    except ClientError as error:
        denied = error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    s3.delete_bucket_policy(Bucket=bucket)
    return denied
