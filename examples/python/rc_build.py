"""The seed's construction chain (MiV-Simulator-Cases 3-interface-api, rc-separation.py) job by job from
Python, as the seed launches them: h5_types, network_architecture, measure_distances, per population
generate_synapse_forest, distribute_synapses and generate_connections, then neuroh5_graph and its files().
The same jobs as `miv.build("examples/rc-network/network.yaml")` (the same identities: the store runs each once).

    python examples/python/rc_build.py [--store DIR]          # or under mpirun
"""

import argparse
import os

import miv
from miv.utils import from_yaml

NET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rc-network")


def chain(store):
    net = from_yaml(os.path.join(NET, "network.yaml"))
    cell_types = from_yaml(os.path.join(NET, "cell_types.yml"))
    synapses = from_yaml(os.path.join(NET, "synapses.yml"))
    h5_types = miv.get(
        "miv_simulator.interface.h5_types",
        [
            {
                "cell_distributions": net["cell_distributions"],
                "projections": {post: sorted(pre) for post, pre in synapses.items()},
                "population_definitions": net["population_definitions"],
            }
        ],
    ).launch(store)
    network = miv.get(
        "miv_simulator.interface.network_architecture",
        {"cell_distributions": net["cell_distributions"], "layer_extents": net["layer_extents"]},
        uses=h5_types,
    ).launch(store)
    measure_distances = network.measure_distances({"origin": net["origin"]}).launch(store)
    forests, syns, conns = {}, {}, {}
    for population in ["OLM", "PVBC", "PYR"]:
        forests[population] = network.generate_synapse_forest(
            {"population": population, "morphology": os.path.join(NET, net["morphology"], f"{population}.swc")},
            uses=measure_distances,
        ).launch(store)
    for population, forest in forests.items():
        syns[population] = network.distribute_synapses(
            {
                "population": population,
                "density": cell_types[population]["synapses"]["density"],
                "discretization": cell_types[population].get("discretization"),
                "layer_definitions": net["layer_definitions"],
                "distribution": net["distribution"],
            },
            uses=forest,
        ).launch(store)
    for population, syn in syns.items():
        conns[population] = network.generate_connections(
            {
                "synapses": synapses,
                "axon_extents": net["axon_extents"],
                "population_definitions": net["population_definitions"],
                "layer_definitions": net["layer_definitions"],
            },
            uses=[measure_distances, syn],
        ).launch(store)
    graph = miv.get(
        "miv_simulator.interface.neuroh5_graph",
        {"tree_base": net.get("tree_base", 1)},  # Section node ids from 1 (neuroh5's convention, miv's default)
        uses=[network, measure_distances, *forests.values(), *syns.values(), *conns.values()],
    ).launch(store)
    return graph


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=os.path.join(NET, ".miv-store"))
    a = p.parse_args()
    graph = chain(a.store)
    if miv.rank == 0:
        print(f"{graph!r}: {graph.files()}")


if __name__ == "__main__":
    main()
