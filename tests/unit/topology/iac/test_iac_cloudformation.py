"""CloudFormation templates -> components and declared edges: AWS's published ELB sample and
hand-written templates (YAML short-form tags, JSON) for what the sample does not use."""

from __future__ import annotations

import json
from pathlib import Path

from warroom.topology.iac.load import read_iac

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iac"
ELB = FIXTURES / "cloudformation-elb"
ELB_FILE = ELB / "ELBWithLockedDownAutoScaledInstances.yaml"


def test_published_elb_sample():
    graph = read_iac(ELB)
    assert graph.kinds() == {"WebServerGroup": "service", "ElasticLoadBalancer": "load-balancer"}
    assert graph.edge_pairs() == [("ElasticLoadBalancer", "WebServerGroup")]
    assert {(e.via, e.source) for e in graph.edges} == {
        # The group registers with the load balancer: traffic goes the other way.
        ("registers with ElasticLoadBalancer in LoadBalancerNames", f"{ELB_FILE}:133"),
        # Its launch configuration's security group admits the ELB's source security group.
        (
            "security group InstanceSecurityGroup ingress from ElasticLoadBalancer",
            f"{ELB_FILE}:238",
        ),
    }
    assert graph.component("WebServerGroup").source == f"{ELB_FILE}:116"
    assert graph.unknown_kinds == {} and graph.problems == []


# Hand-written for this test (not from a public repository).
SHOP = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  OrdersDB:
    Type: AWS::RDS::DBInstance
    Properties:
      DBInstanceIdentifier: orders-db
      Engine: postgres
      VPCSecurityGroups: [!Ref DbSg]
  OrdersQueue:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Lambda::Function
    DependsOn: OrdersQueue
    Properties:
      FunctionName: order-worker
      Environment:
        Variables:
          DB_HOST: !GetAtt OrdersDB.Endpoint.Address
          QUEUE: !Sub "${OrdersQueue.Arn}"
          REGION: !Sub "${AWS::Region}"
  WorkerSource:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt OrdersQueue.Arn
      FunctionName: !Ref Worker
  Alb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
  Web:
    Type: AWS::ECS::Service
    Properties:
      TaskDefinition: !Ref WebTask
      LoadBalancers:
        - TargetGroupArn: !Ref WebTargets
          ContainerName: web
  WebTask:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - Name: web
          Environment:
            - Name: DATABASE_URL
              Value: !Sub "postgres://${OrdersDB.Endpoint.Address}:5432/orders"
          SecurityGroups: [!Ref WebSg]
  WebTargets:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
  Http:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref Alb
      DefaultActions:
        - Type: forward
          TargetGroupArn: !Ref WebTargets
  WebSg:
    Type: AWS::EC2::SecurityGroup
  DbSg:
    Type: AWS::EC2::SecurityGroup
  WebToDb:
    Type: AWS::EC2::SecurityGroupIngress
    Properties:
      GroupId: !GetAtt DbSg.GroupId
      SourceSecurityGroupId: !GetAtt WebSg.GroupId
  Thing:
    Type: Custom::Thing
  Nested:
    Type: AWS::CloudFormation::Stack
"""


def test_refs_getatt_sub_depends_on_and_groups(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP)
    graph = read_iac(tmp_path)
    got = {(e.caller, e.callee, e.via, int(e.source.rsplit(":", 1)[1])) for e in graph.edges}
    assert got == {
        ("Worker", "OrdersDB", "reference OrdersDB in Environment.Variables.DB_HOST", 18),
        ("Worker", "OrdersQueue", "reference OrdersQueue in Environment.Variables.QUEUE", 19),
        ("Worker", "OrdersQueue", "depends_on", 13),
        ("Worker", "OrdersQueue", "WorkerSource (event-source)", 24),
        # The task definition's references are the service's that runs it.
        ("Web", "OrdersDB", "reference OrdersDB in ContainerDefinitions.Environment.Value", 42),
        ("Alb", "Web", "Http forwards to WebTargets", 33),  # - TargetGroupArn: !Ref WebTargets
        ("Web", "OrdersDB", "security group DbSg ingress from WebSg", 61),
    }
    kinds = graph.kinds()
    assert kinds["OrdersDB"] == "database" and kinds["OrdersQueue"] == "queue"
    assert kinds["Alb"] == "load-balancer" and kinds["Web"] == kinds["Worker"] == "service"
    assert graph.component("orders-db").name == "OrdersDB"
    assert graph.component("OrdersQueue").source == f"{path}:9"
    assert graph.unknown_kinds == {"Custom::Thing": 1, "AWS::CloudFormation::Stack": 1}


def test_json_template(tmp_path):
    template = {
        "Resources": {
            "Cache": {"Type": "AWS::ElastiCache::CacheCluster", "Properties": {"Engine": "redis"}},
            "Api": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Environment": {
                        "Variables": {"REDIS": {"Fn::GetAtt": ["Cache", "RedisEndpoint.Address"]}}
                    }
                },
            },
        }
    }
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(template, indent=2))
    graph = read_iac(tmp_path)
    [edge] = graph.edges
    assert (edge.caller, edge.callee) == ("Api", "Cache")
    line = int(edge.source.rsplit(":", 1)[1])
    assert '"Cache"' in path.read_text().splitlines()[line - 1]
    assert graph.kinds()["Cache"] == "cache"
