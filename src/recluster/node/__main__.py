from recluster.node.cli import node

node()
