# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The option shared by the tgstack.hybrid RabbitMQ modules
    # (plugins/module_utils/rabbitmq.py: rabbitmq_common_argument_spec).
    DOCUMENTATION = r"""
options:
  node:
    description: The node to talk to (C(rabbitmqctl --node)); the local node by default.
    type: str
"""
