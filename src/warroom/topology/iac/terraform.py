"""Terraform -> the services its resources declare and who calls whom.

    module = [parse_hcl("infra/main.tf", text), parse_hcl("infra/db.tf", text2)]
    graph = read_module(module)                    # one folder's *.tf files together
    graph = read_state("terraform.tfstate", text)  # what `terraform apply` recorded

Compute, data stores, queues and load balancers are the components (by resource type); the
rest (networks, IAM, logs) is structure. A component calls another when its configuration
references it (aws_db_instance.main.address in an environment), when a security group lets
one group's members reach another's, and when a listener forwards a load balancer to a target
group its members joined. Task definitions and launch templates count as the service that
runs them. python-hcl2 gives no line numbers, so a resource's line is where its
`resource "TYPE" "NAME"` header is, and a reference's the line it is written on.

The role-based resource graph at the end (CloudResource, cloud_graph) is shared with
cloudformation.py: both are cloud resources that reference each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from warroom.errors import InputError
from warroom.topology.iac.model import Component, DeclaredEdge, IacGraph, Kind, count_unknown

# What a resource is to the call graph (the shared engine at the end reads these).
Role = Literal[
    "component",
    "folded",
    "security-group",
    "sg-rule",
    "target-group",
    "listener",
    "attachment",
    "event-source",
    "subscription",
    "other",
]

# Resource types by the kind of component they are (space-separated to stay one table).
_TF_KINDS: dict[Kind, str] = {
    "service": """
        aws_instance aws_ecs_service aws_lambda_function aws_autoscaling_group
        aws_apprunner_service aws_elastic_beanstalk_environment aws_eks_node_group
        google_compute_instance google_compute_instance_group_manager google_cloud_run_service
        google_cloud_run_v2_service google_cloudfunctions_function
        google_cloudfunctions2_function azurerm_linux_virtual_machine
        azurerm_windows_virtual_machine azurerm_linux_web_app azurerm_windows_web_app
        azurerm_function_app azurerm_linux_function_app azurerm_container_group
        azurerm_container_app kubernetes_deployment kubernetes_deployment_v1 docker_container
    """,
    "database": """
        aws_db_instance aws_rds_cluster aws_dynamodb_table aws_docdb_cluster
        aws_neptune_cluster aws_redshift_cluster aws_opensearch_domain aws_elasticsearch_domain
        google_sql_database_instance google_spanner_instance google_bigtable_instance
        azurerm_postgresql_server azurerm_postgresql_flexible_server azurerm_mysql_server
        azurerm_mysql_flexible_server azurerm_mssql_server azurerm_cosmosdb_account
    """,
    "cache": """
        aws_elasticache_cluster aws_elasticache_replication_group
        aws_elasticache_serverless_cache aws_memorydb_cluster google_redis_instance
        azurerm_redis_cache
    """,
    "queue": """
        aws_sqs_queue aws_sns_topic aws_msk_cluster aws_mq_broker aws_kinesis_stream
        google_pubsub_topic azurerm_servicebus_namespace azurerm_eventhub_namespace
    """,
    "load-balancer": """
        aws_lb aws_alb aws_elb aws_api_gateway_rest_api aws_apigatewayv2_api
        aws_cloudfront_distribution google_compute_forwarding_rule
        google_compute_global_forwarding_rule azurerm_lb azurerm_application_gateway
    """,
    "storage": "aws_s3_bucket aws_efs_file_system google_storage_bucket azurerm_storage_account",
}
_TF_COMPONENTS = {t: kind for kind, types in _TF_KINDS.items() for t in types.split()}
_TF_ROLE_TYPES: dict[Role, str] = {
    "security-group": "aws_security_group",
    "sg-rule": """
        aws_security_group_rule aws_vpc_security_group_ingress_rule
        aws_vpc_security_group_egress_rule
    """,
    "target-group": "aws_lb_target_group aws_alb_target_group",
    "listener": "aws_lb_listener aws_alb_listener aws_lb_listener_rule aws_alb_listener_rule",
    "attachment": """
        aws_lb_target_group_attachment aws_alb_target_group_attachment
        aws_autoscaling_attachment aws_elb_attachment
    """,
    "folded": "aws_ecs_task_definition aws_launch_configuration aws_launch_template",
    "event-source": "aws_lambda_event_source_mapping",
    "subscription": "aws_sns_topic_subscription",
}
_TF_ROLES = {t: role for role, types in _TF_ROLE_TYPES.items() for t in types.split()}
# Structure: networks, identity, logs, DNS, sub-resources of a bucket or a queue.
_TF_QUIET = re.compile(
    r"^(aws_(vpc|subnet|route|iam_|cloudwatch_|network_|internet_gateway|nat_gateway|eip|"
    r"lb_|alb_|ecs_cluster|ecs_capacity|db_subnet_group|db_parameter_group|rds_cluster_param|"
    r"elasticache_subnet_group|elasticache_parameter_group|kms_|route53_|acm_|key_pair|ssm_|"
    r"secretsmanager_|s3_bucket_|lambda_permission|lambda_alias|sqs_queue_policy|"
    r"sns_topic_policy|appautoscaling_|autoscaling_policy|autoscaling_schedule|default_|"
    r"flow_log|ecr_|service_discovery_|api_gateway_|apigatewayv2_|wafv2_|placement_group)|"
    r"null_resource|random_|tls_|local_|time_|terraform_data|"
    r"google_(compute_(network|subnetwork|firewall|router|address|health_check)|project|"
    r"service_account|iam_)|azurerm_(resource_group|virtual_network|subnet|network_|"
    r"public_ip|role_))"
)
_ALIAS_KEYS = [
    "name",
    "identifier",
    "function_name",
    "bucket",
    "cluster_id",
    "cluster_identifier",
    "replication_group_id",
    "domain_name",
    "table_name",
]
_REF = re.compile(r"(?<![\w.])((?:module\.[\w-]+\.)?[a-z][a-z0-9]*_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
IAC_HINT = "pip install 'warroom[iac]'"
_BLOCK = re.compile(r"^(resource|data|module|output|variable|locals|provider|terraform)\b", re.M)


@dataclass(frozen=True)
class HclFile:
    """One parsed .tf file: its resources (type, name, body) and module calls."""

    path: str
    text: str
    resources: tuple[tuple[str, str, Mapping[str, Any]], ...]
    modules: tuple[str, ...]


def parse_hcl(path: str, text: str) -> HclFile:
    """A .tf file parsed with python-hcl2; InputError naming path:line when it does not."""
    try:
        import hcl2
    except ImportError as err:
        raise InputError(f"{path}: reading Terraform needs python-hcl2: {IAC_HINT}") from err
    try:
        options = getattr(hcl2, "SerializationOptions", None)
        if options is not None:  # python-hcl2 >= 7 quotes strings unless told not to
            opts = options(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
            data = hcl2.loads(text, serialization_options=opts)
        else:
            data = hcl2.loads(text)
    except Exception as err:  # lark's parse errors share no base class with hcl2's own
        line = getattr(err, "line", None)
        where = f":{line}" if isinstance(line, int) and line > 0 else ""
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}{where}: not valid HCL: {first}") from err
    resources = tuple(
        (_unquote(kind), _unquote(name), body if isinstance(body, Mapping) else {})
        for block in data.get("resource") or []
        for kind, named in block.items()
        for name, body in named.items()
    )
    modules = tuple(_unquote(n) for block in data.get("module") or [] for n in block)
    return HclFile(path, text, resources, modules)


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) > 1 and text[0] == text[-1] == '"' else text


def read_module(files: Sequence[HclFile]) -> IacGraph:
    """The components and edges of one Terraform module (a folder's .tf files)."""
    declared = {f"{kind}.{name}" for file in files for kind, name, _ in file.resources}
    resources: list[CloudResource] = []
    unknown: dict[str, int] = {}
    for file in files:
        for module in file.modules:
            count_unknown(unknown, f"terraform module {module} (not followed)")
        for kind, name, body in file.resources:
            role, component_kind = _role(kind, unknown)
            line, span = _header(file.text, kind, name)
            refs = tuple(_hcl_refs(body, f"{kind}.{name}", declared, file, line, span))
            egress = kind.endswith("egress_rule") or str(body.get("type", "")) == "egress"
            aliases = _aliases(body)
            source = f"{file.path}:{line}"
            resources.append(
                CloudResource(f"{kind}.{name}", role, component_kind, source, refs, aliases, egress)
            )
    return cloud_graph(resources, unknown)


def _role(kind: str, unknown: dict[str, int]) -> tuple[Role, Kind]:
    if kind in _TF_COMPONENTS:
        return "component", _TF_COMPONENTS[kind]
    if kind in _TF_ROLES:
        return _TF_ROLES[kind], "unknown"
    if not _TF_QUIET.match(kind):
        count_unknown(unknown, kind)
    return "other", "unknown"


def _header(text: str, kind: str, name: str) -> tuple[int, tuple[int, int]]:
    """The line of `resource "TYPE" "NAME"` and the character span of its block."""
    found = re.search(
        rf'^[ \t]*resource\s+"?{re.escape(kind)}"?\s+"?{re.escape(name)}"?', text, re.M
    )
    if found is None:
        return 1, (0, len(text))
    after = _BLOCK.search(text, found.end())
    return text.count("\n", 0, found.start()) + 1, (
        found.start(),
        after.start() if after else len(text),
    )


def _hcl_refs(
    body: Mapping[str, Any],
    own: str,
    declared: set[str],
    file: HclFile,
    line: int,
    span: tuple[int, int],
) -> Iterator[Ref]:
    """References to other declared resources, each with its attribute path and the line
    its text is on (the n-th time a block names a target, the n-th place it is written)."""
    seen: dict[str, int] = {}
    block = file.text[span[0] : span[1]]
    for attr, value in _strings(body):
        for match in _REF.finditer(value):
            target = f"{match.group(1)}.{match.group(2)}"
            if target == own or target not in declared:
                continue
            places = [m.start() for m in re.finditer(rf"(?<![\w.]){re.escape(target)}\b", block)]
            nth = seen.get(target, 0)
            seen[target] = nth + 1
            at = line
            if places:
                offset = span[0] + places[min(nth, len(places) - 1)]
                at = file.text.count("\n", 0, offset) + 1
            yield Ref(target, attr, f"{file.path}:{at}")


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(attribute path, text) of every string in a parsed body, list indexes left out."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not str(key).startswith("__"):
                yield from _strings(
                    item, f"{path}.{_unquote(str(key))}" if path else _unquote(str(key))
                )
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, path)


def _aliases(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The resource's own literal name(s), what telemetry may call it."""
    return tuple(
        str(values[key])
        for key in _ALIAS_KEYS
        if isinstance(values.get(key), str) and values[key] and "${" not in values[key]
    )


def read_state(path: str, text: str) -> IacGraph:
    """The components and edges of a terraform.tfstate (format 4): each managed resource's
    recorded dependencies, and attributes that hold another resource's id or ARN."""
    try:
        state = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err
    if not isinstance(state, Mapping) or not isinstance(state.get("resources"), list):
        raise InputError(f"{path}: not a Terraform state of format 4 (no resources list)")
    managed = [
        r for r in state["resources"] if isinstance(r, Mapping) and r.get("mode") == "managed"
    ]
    ids = {
        value: _state_address(r)
        for r in managed
        for instance in _instances(r)
        for key in ("id", "arn")
        if isinstance(value := _attributes(instance).get(key), str) and value
    }
    unknown: dict[str, int] = {}
    resources = [_state_resource(path, text, r, ids, unknown) for r in managed]
    return cloud_graph(resources, unknown)


def _instances(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A state resource's instances that are objects (anything else reads as absent)."""
    found = resource.get("instances")
    return [i for i in found if isinstance(i, Mapping)] if isinstance(found, list) else []


def _attributes(instance: Mapping[str, Any]) -> Mapping[str, Any]:
    found = instance.get("attributes")
    return found if isinstance(found, Mapping) else {}


def _state_address(resource: Mapping[str, Any]) -> str:
    prefix = f"{resource['module']}." if resource.get("module") else ""
    return f"{prefix}{resource.get('type')}.{resource.get('name')}"


def _state_resource(
    path: str,
    text: str,
    resource: Mapping[str, Any],
    ids: Mapping[str, str],
    unknown: dict[str, int],
) -> CloudResource:
    kind, name = str(resource.get("type")), str(resource.get("name"))
    address = _state_address(resource)
    role, component_kind = _role(kind, unknown)
    found = re.search(rf'"type":\s*"{re.escape(kind)}",\s*"name":\s*"{re.escape(name)}"', text)
    source = f"{path}:{text.count(chr(10), 0, found.start()) + 1 if found else 1}"
    refs: dict[tuple[str, str], Ref] = {}
    attributes: Mapping[str, Any] = {}
    for instance in _instances(resource):
        attributes = _attributes(instance) or attributes
        for attr, value in _strings(_attributes(instance)):
            if ids.get(value) not in (None, address):
                refs.setdefault((ids[value], attr), Ref(ids[value], attr, source))
        for dependency in instance.get("dependencies") or []:
            if not any(target == dependency for target, _ in refs):
                refs[(dependency, "dependencies")] = Ref(dependency, "dependencies", source)
    egress = kind.endswith("egress_rule") or str(attributes.get("type", "")) == "egress"
    return CloudResource(
        address, role, component_kind, source, tuple(refs.values()), _aliases(attributes), egress
    )


# -- The resource graph shared with cloudformation.py -------------------------------------


@dataclass(frozen=True)
class Ref:
    """A reference to another resource: where in the referrer (`attr`) and on which line."""

    target: str
    attr: str
    source: str


@dataclass(frozen=True)
class CloudResource:
    """A cloud resource by the role it plays in the call graph."""

    address: str
    role: Role
    kind: Kind
    source: str
    refs: tuple[Ref, ...]
    aliases: tuple[str, ...] = ()
    egress: bool = False  # an sg-rule that opens the group's way out, not its way in


def _norm(attr: str) -> list[str]:
    """Attribute path segments compared across Terraform and CloudFormation spellings."""
    return [part.lower().replace("_", "") for part in attr.split(".") if part]


_REGISTERS = {"loadbalancers", "loadbalancer", "loadbalancernames", "targetgrouparns"}
_GROUP = {"securitygroupid", "groupid"}
_PEER_ROLES = ("security-group", "component")
_PEER = {
    "sourcesecuritygroupid",
    "referencedsecuritygroupid",
    "destinationsecuritygroupid",
    "sourcesecuritygroupname",
}


def cloud_graph(resources: Iterable[CloudResource], unknown: dict[str, int]) -> IacGraph:
    """Components and edges from resources that reference each other."""
    graph = _CloudGraph(list(resources))
    return IacGraph(graph.components(), tuple(graph.edges()), unknown)


class _CloudGraph:
    def __init__(self, resources: list[CloudResource]) -> None:
        self.resources = resources
        self.by = {r.address: r for r in resources}

    def components(self) -> tuple[Component, ...]:
        return tuple(
            Component(r.address, r.kind, r.source, r.aliases)
            for r in self.resources
            if r.role == "component"
        )

    def edges(self) -> Iterator[DeclaredEdge]:
        for resource in self.resources:
            yield from self._references(resource)
            yield from self._security_rules(resource)
            yield from self._links(resource)
        yield from self._target_groups()

    def _role(self, address: str) -> Role | None:
        found = self.by.get(address)
        return found.role if found else None

    def owners(self, address: str) -> set[str]:
        """The components a resource stands for: itself, or who runs a folded one."""
        resource = self.by.get(address)
        if resource is None or resource.role not in ("component", "folded"):
            return set()
        if resource.role == "component":
            return {address}
        return {
            r.address
            for r in self.resources
            if r.role == "component" and any(ref.target == address for ref in r.refs)
        }

    def _references(self, resource: CloudResource) -> Iterator[DeclaredEdge]:
        """A component (or what it runs) that references another component calls it; one
        that registers with a load balancer is called by it."""
        for ref in resource.refs:
            if self._role(ref.target) != "component":
                continue
            target = self.by[ref.target]
            registers = target.kind == "load-balancer" and bool(_REGISTERS & set(_norm(ref.attr)))
            via = f"registers with {ref.target} in {ref.attr}" if registers else _via(ref)
            for owner in self.owners(resource.address) - {ref.target}:
                caller, callee = (ref.target, owner) if registers else (owner, ref.target)
                yield DeclaredEdge(caller, callee, via, ref.source)

    def members(self, group: str) -> set[str]:
        """The components in a security group (a component used as a rule's peer is its
        own group: a classic ELB's source security group)."""
        if self._role(group) == "component":
            return {group}
        return {
            owner
            for r in self.resources
            if any(ref.target == group for ref in r.refs)
            for owner in self.owners(r.address)
        }

    def _security_rules(self, resource: CloudResource) -> Iterator[DeclaredEdge]:
        """Members of the peer group may reach members of the group it opens to (once per
        rule: a rule that names its peer twice is still one way in)."""
        done: set[tuple[str, str, bool]] = set()
        for group, peer, egress, ref in self._rules(resource):
            if (group, peer, egress) in done:
                continue
            done.add((group, peer, egress))
            via = f"security group {group} {'egress to' if egress else 'ingress from'} {peer}"
            sources, targets = self.members(peer), self.members(group)
            if egress:
                sources, targets = targets, sources
            for caller in sources:
                for callee in targets - {caller}:
                    yield DeclaredEdge(caller, callee, via, ref.source)

    def _rules(self, resource: CloudResource) -> Iterator[tuple[str, str, bool, Ref]]:
        """(group, peer, egress, ref) of the rules a resource declares."""
        peers = [
            r for r in resource.refs if self._role(r.target) in ("security-group", "component")
        ]
        if resource.role == "security-group":
            for ref in peers:
                path = _norm(ref.attr)
                if ref.target != resource.address and (
                    path[:1] == ["dependencies"]
                    or any("ingress" in p or "egress" in p for p in path)
                ):
                    egress = any("egress" in p for p in path)
                    yield resource.address, ref.target, egress, ref
        elif resource.role == "sg-rule":
            groups = [r.target for r in peers if _GROUP & set(_norm(r.attr))]
            for ref in peers:
                if _PEER & set(_norm(ref.attr)):
                    for group in groups:
                        yield group, ref.target, resource.egress, ref

    def _links(self, resource: CloudResource) -> Iterator[DeclaredEdge]:
        """An event source mapping: the function polls the source; a subscription: the
        topic pushes to the endpoint."""
        if resource.role not in ("event-source", "subscription"):
            return
        parts = [r for r in resource.refs if self._role(r.target) == "component"]
        if resource.role == "event-source":
            callers = [r for r in parts if self.by[r.target].kind == "service"]
        else:
            callers = [r for r in parts if "topicarn" in _norm(r.attr)]
        for caller in callers:
            for callee in parts:
                if callee.target != caller.target:
                    via = f"{resource.address} ({resource.role})"
                    yield DeclaredEdge(caller.target, callee.target, via, callee.source)

    def _target_groups(self) -> Iterator[DeclaredEdge]:
        """Load balancer -> the members of each target group its listeners forward to."""
        for lb, listener, group in self._fronts():
            for member, ref in self._joined(group):
                if member != lb:
                    yield DeclaredEdge(lb, member, f"{listener} forwards to {group}", ref.source)
        for resource in self.resources:  # an attachment straight to a (classic) load balancer
            if resource.role != "attachment":
                continue
            for direct in [r.target for r in resource.refs if self._is_lb(r.target)]:
                for ref in resource.refs:
                    for member in self.owners(ref.target) - {direct}:
                        via = f"{resource.address} attaches to {direct}"
                        yield DeclaredEdge(direct, member, via, ref.source)

    def _is_lb(self, address: str) -> bool:
        found = self.by.get(address)
        return found is not None and found.role == "component" and found.kind == "load-balancer"

    def _fronts(self) -> Iterator[tuple[str, str, str]]:
        """(load balancer, listener, target group) for each listener's forward."""
        for listener in (r for r in self.resources if r.role == "listener"):
            groups = [r.target for r in listener.refs if self._role(r.target) == "target-group"]
            for lb in self._listener_lbs(listener.address, set()):
                for group in groups:
                    yield lb, listener.address, group

    def _listener_lbs(self, address: str, seen: set[str]) -> set[str]:
        """The load balancers of a listener, or of the listener a listener rule belongs to."""
        seen.add(address)
        lbs: set[str] = set()
        for ref in self.by[address].refs:
            if self._is_lb(ref.target):
                lbs.add(ref.target)
            elif self._role(ref.target) == "listener" and ref.target not in seen:
                lbs |= self._listener_lbs(ref.target, seen)
        return lbs

    def _joined(self, group: str) -> Iterator[tuple[str, Ref]]:
        """(member, the reference that joins it) of a target group."""
        for resource in self.resources:
            joins = [r for r in resource.refs if r.target == group]
            if not joins:
                if resource.address == group:  # a group that lists its own targets
                    for ref in resource.refs:
                        for member in self.owners(ref.target):
                            yield member, ref
                continue
            if resource.role == "attachment":
                for ref in resource.refs:
                    for member in self.owners(ref.target):
                        yield member, ref
            else:
                for member in self.owners(resource.address):
                    yield member, joins[0]


def _via(ref: Ref) -> str:
    path = _norm(ref.attr)
    if path[:1] in (["dependson"], ["dependencies"]):
        return "depends_on" if path[0] == "dependson" else "state dependency"
    return f"reference {ref.target} in {ref.attr}"


def module_folder(path: str) -> str:
    """The module a .tf file belongs to: its folder."""
    return str(PurePath(path).parent)
