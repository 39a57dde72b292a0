"""CloudFormation templates (YAML with !Ref/!GetAtt/!Sub, or JSON) -> services and calls.

    graph = read_template("stack.yaml", text)

cfn-flip reads the short-form tags into their long forms. Resources are components by type
(AWS::RDS::DBInstance -> database, AWS::SQS::Queue -> queue...). A resource calls another when
its properties Ref, GetAtt or Sub it (a Lambda's environment holding a database's
Endpoint.Address) or it DependsOn it; security groups, target groups and listeners connect the
resources that use them, as in terraform.py, whose role-based graph this reader shares. Lines
are found by searching the template text for the logical ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from warroom.errors import InputError
from warroom.topology.iac.model import IacGraph, Kind, count_unknown
from warroom.topology.iac.terraform import IAC_HINT, CloudResource, Ref, Role, cloud_graph

_CFN_KINDS: dict[Kind, str] = {
    "service": """
        AWS::EC2::Instance AWS::AutoScaling::AutoScalingGroup AWS::ECS::Service
        AWS::Lambda::Function AWS::Serverless::Function AWS::AppRunner::Service
        AWS::ElasticBeanstalk::Environment AWS::StepFunctions::StateMachine
        AWS::Serverless::StateMachine AWS::EKS::Nodegroup
    """,
    "database": """
        AWS::RDS::DBInstance AWS::RDS::DBCluster AWS::DynamoDB::Table
        AWS::Serverless::SimpleTable AWS::DocDB::DBCluster AWS::Neptune::DBCluster
        AWS::Redshift::Cluster AWS::OpenSearchService::Domain AWS::Elasticsearch::Domain
    """,
    "cache": """
        AWS::ElastiCache::CacheCluster AWS::ElastiCache::ReplicationGroup
        AWS::ElastiCache::ServerlessCache AWS::MemoryDB::Cluster
    """,
    "queue": """
        AWS::SQS::Queue AWS::SNS::Topic AWS::Kinesis::Stream AWS::MSK::Cluster
        AWS::AmazonMQ::Broker AWS::Events::EventBus
    """,
    "load-balancer": """
        AWS::ElasticLoadBalancingV2::LoadBalancer AWS::ElasticLoadBalancing::LoadBalancer
        AWS::ApiGateway::RestApi AWS::ApiGatewayV2::Api AWS::Serverless::Api
        AWS::Serverless::HttpApi AWS::CloudFront::Distribution
    """,
    "storage": "AWS::S3::Bucket AWS::EFS::FileSystem",
}
_CFN_COMPONENTS = {t: kind for kind, types in _CFN_KINDS.items() for t in types.split()}
_CFN_ROLE_TYPES: dict[Role, str] = {
    "security-group": "AWS::EC2::SecurityGroup",
    "sg-rule": "AWS::EC2::SecurityGroupIngress AWS::EC2::SecurityGroupEgress",
    "target-group": "AWS::ElasticLoadBalancingV2::TargetGroup",
    "listener": "AWS::ElasticLoadBalancingV2::Listener AWS::ElasticLoadBalancingV2::ListenerRule",
    "folded": """
        AWS::ECS::TaskDefinition AWS::AutoScaling::LaunchConfiguration AWS::EC2::LaunchTemplate
    """,
    "event-source": "AWS::Lambda::EventSourceMapping",
    "subscription": "AWS::SNS::Subscription",
}
_CFN_ROLES = {t: role for role, types in _CFN_ROLE_TYPES.items() for t in types.split()}
# Structure: networks, identity, logs, DNS, policies, API sub-resources, stack plumbing.
_CFN_QUIET = re.compile(
    r"^AWS::(EC2|IAM|Logs|CloudWatch|KMS|Route53|CertificateManager|SSM|SecretsManager|"
    r"ApplicationAutoScaling|ServiceDiscovery|ECR|WAFv2|Events::Rule|"
    r"ElasticLoadBalancingV2::ListenerCertificate|ECS::Cluster|ECS::CapacityProvider|"
    r"AutoScaling::(ScalingPolicy|ScheduledAction|LifecycleHook)|"
    r"RDS::DB(SubnetGroup|ParameterGroup|ClusterParameterGroup)|ElastiCache::(SubnetGroup|"
    r"ParameterGroup)|S3::BucketPolicy|SQS::QueuePolicy|SNS::TopicPolicy|Lambda::(Permission|"
    r"Version|Alias|LayerVersion)|ApiGateway::|ApiGatewayV2::|CloudFormation::Wait)"
)
_ALIAS_KEYS = [
    "FunctionName",
    "DBInstanceIdentifier",
    "DBClusterIdentifier",
    "QueueName",
    "TopicName",
    "BucketName",
    "ClusterName",
    "ServiceName",
    "Name",
    "TableName",
    "LoadBalancerName",
    "CacheClusterId",
    "ReplicationGroupId",
]
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def is_template(text: str) -> bool:
    """True for text that looks like a CloudFormation template (checked before YAML parsing,
    which the short-form tags would break)."""
    if "AWSTemplateFormatVersion" in text:
        return True
    return "Resources" in text and bool(re.search(r"[\"']?Type[\"']?\s*:\s*[\"']?AWS::", text))


def read_template(path: str, text: str) -> IacGraph | None:
    """The components and edges of one template; None when it has no Resources mapping
    after all (it only mentioned the words); InputError naming path:line if it does not
    parse."""
    data = _parse(path, text)
    resources = data.get("Resources") if isinstance(data, Mapping) else None
    if not isinstance(resources, Mapping):
        return None
    lines = _Lines(text, list(resources))
    unknown: dict[str, int] = {}
    found = [
        _resource(path, logical_id, spec, resources, lines, unknown)
        for logical_id, spec in resources.items()
        if isinstance(spec, Mapping)
    ]
    return cloud_graph(found, unknown)


def _parse(path: str, text: str) -> Any:
    try:
        import cfn_flip
    except ImportError as err:
        raise InputError(f"{path}: reading CloudFormation needs cfn-flip: {IAC_HINT}") from err
    if text.lstrip().startswith("{"):
        try:
            return cfn_flip.load_json(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err
    try:
        return cfn_flip.load_yaml(text)
    except yaml.YAMLError as err:
        raise yaml_input_error(path, err) from err


def yaml_input_error(path: object, err: yaml.YAMLError) -> InputError:
    """The file and, where the parser knows it, the line that does not parse."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or err
    return InputError(f"{path}{line}: not valid YAML: {problem}")


def _resource(
    path: str,
    logical_id: str,
    spec: Mapping[str, Any],
    resources: Mapping[str, Any],
    lines: _Lines,
    unknown: dict[str, int],
) -> CloudResource:
    kind = str(spec.get("Type", ""))
    role, component_kind = _role(kind, unknown)
    properties = spec.get("Properties") or {}
    refs = tuple(
        Ref(target, attr, f"{path}:{lines.reference(logical_id, target, nth, attr)}")
        for nth, (target, attr) in _numbered(list(_spec_refs(spec)))
        if target in resources and target != logical_id
    )
    aliases = tuple(
        str(properties[key])
        for key in _ALIAS_KEYS
        if isinstance(properties, Mapping) and isinstance(properties.get(key), str)
    )
    source = f"{path}:{lines.header(logical_id)}"
    egress = kind.endswith("Egress")
    return CloudResource(logical_id, role, component_kind, source, refs, aliases, egress)


def _role(kind: str, unknown: dict[str, int]) -> tuple[Role, Kind]:
    if kind in _CFN_COMPONENTS:
        return "component", _CFN_COMPONENTS[kind]
    if kind in _CFN_ROLES:
        return _CFN_ROLES[kind], "unknown"
    if not _CFN_QUIET.match(kind):
        count_unknown(unknown, kind or "(no Type)")
    return "other", "unknown"


def _spec_refs(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """References in Properties and DependsOn, in the order the template writes them."""
    for key, value in spec.items():
        if key == "Properties":
            yield from _refs(value, "")
        elif key == "DependsOn":
            for name in [value] if isinstance(value, str) else value or []:
                yield str(name), "DependsOn"


def _refs(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(logical id, property path) of each Ref, GetAtt and ${Name} in a Sub."""
    if isinstance(value, Mapping):
        if isinstance(value.get("Ref"), str):
            yield value["Ref"], path
            return
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            target = att[0] if isinstance(att, list) and att else str(att).split(".")[0]
            yield str(target), path
            return
        if "Fn::Sub" in value:
            yield from _sub_refs(value["Fn::Sub"], path)
            return
        for key, item in value.items():
            inner = path if str(key).startswith("Fn::") else f"{path}.{key}" if path else str(key)
            yield from _refs(item, inner)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item, path)


def _sub_refs(sub: Any, path: str) -> Iterator[tuple[str, str]]:
    """Names a Fn::Sub template uses, less its own variables and AWS:: pseudo parameters."""
    template, variables = (sub[0], sub[1]) if isinstance(sub, list) and len(sub) == 2 else (sub, {})
    own = set(variables) if isinstance(variables, Mapping) else set()
    for match in _SUB_NAME.finditer(str(template)):
        if match.group(1) not in own:
            yield match.group(1), path
    yield from _refs(variables, path)


def _numbered(found: list[tuple[str, str]]) -> Iterator[tuple[int, tuple[str, str]]]:
    """Each reference with how many times its target was referenced before (the n-th
    reference to a target is matched to the n-th place the text names it)."""
    seen: dict[str, int] = {}
    for target, attr in found:
        yield seen.get(target, 0), (target, attr)
        seen[target] = seen.get(target, 0) + 1


class _Lines:
    """Where logical ids are written: each resource's header and its block's span."""

    def __init__(self, text: str, logical_ids: list[str]) -> None:
        self.text = text
        section = re.search(r"^[ \t]*[\"']?Resources[\"']?\s*:", text, re.M)
        start = section.end() if section else 0
        self.starts: dict[str, int] = {}
        for logical_id in logical_ids:
            header = rf"^[ \t]+[\"']?{re.escape(logical_id)}[\"']?\s*:"
            found = re.compile(header, re.M).search(text, start)
            if found:
                self.starts[logical_id] = found.start()
        self.order = sorted(self.starts.values())

    def _line(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def header(self, logical_id: str) -> int:
        """The line of `LogicalId:` under Resources (1 when it cannot be found)."""
        return self._line(self.starts[logical_id]) if logical_id in self.starts else 1

    def reference(self, logical_id: str, target: str, nth: int, attr: str) -> int:
        """The line inside the resource's block that names `target` after the attribute's
        own key (`DB_HOST: !GetAtt OrdersDB.Endpoint.Address`), else the n-th line that
        names it (a list item under its key)."""
        start = self.starts.get(logical_id)
        if start is None:
            return 1
        after = [offset for offset in self.order if offset > start]
        block = self.text[start : after[0] if after else len(self.text)]
        places = [m.start() for m in re.finditer(rf"(?<![\w:]){re.escape(target)}\b", block)]
        if not places:
            return self._line(start)
        key = re.compile(rf"[\"']?{re.escape(attr.rsplit('.', 1)[-1])}[\"']?\s*:")
        for place in places:
            line_start = block.rfind("\n", 0, place) + 1
            if attr and key.search(block, line_start, place):
                return self._line(start + place)
        return self._line(start + places[min(nth, len(places) - 1)])
