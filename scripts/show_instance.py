"""Print one instance of a `contain-estate describe` document as a responder would read it.

Usage: contain-estate describe | python3 scripts/show_instance.py INSTANCE_ID
"""

import json
import sys


def main() -> None:
    state = json.load(sys.stdin)
    instance_id = sys.argv[1]
    names = {group["id"]: group["name"] for group in state["security_groups"]}
    for instance in state["instances"]:
        if instance["id"] != instance_id:
            continue
        print(
            "instance {}: termination protection {}, stop protection {}, shutdown behaviour {}".format(
                instance["id"],
                instance["disable_api_termination"],
                instance["disable_api_stop"],
                instance["shutdown_behavior"],
            )
        )
        tags = ", ".join("{}={}".format(key, value) for key, value in instance["tags"].items())
        print("  tags: " + tags)
        for interface in sorted(instance["interfaces"], key=lambda eni: eni["device_index"]):
            groups = ", ".join("{} ({})".format(group, names.get(group, "?")) for group in interface["groups"])
            print("  interface {} (device {}): {}".format(interface["id"], interface["device_index"], groups))


if __name__ == "__main__":
    main()
