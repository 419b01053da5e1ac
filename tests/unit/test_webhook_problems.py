"""Which of a WooCommerce store's webhooks keep its order changes from reaching us."""
from __future__ import annotations

from connector.domain.model import StoreWebhook
from connector.services.reconcile import ORDER_TOPICS, WEBHOOK_PATH, webhook_problems

OURS = "https://connector.example/webhooks/woocommerce"


def hook(webhook_id: str, topic: str, status: str = "active", url: str = OURS) -> StoreWebhook:
    return StoreWebhook(webhook_id, f"{topic} hook", status, topic, url)


def test_every_order_topic_active_to_us_is_healthy_and_other_services_are_ignored():
    hooks = [hook(str(i), t) for i, t in enumerate(ORDER_TOPICS)]
    hooks += [hook("90", "order.created", "disabled", "https://other.example/hooks"),
              hook("91", "product.updated", "paused", "https://other.example/webhooks/woocommerce-ish")]
    assert webhook_problems(hooks) == []


def test_a_trailing_slash_or_a_path_prefix_still_counts_as_ours():
    hooks = [hook(str(i), t, url=f"https://shop.example/connector{WEBHOOK_PATH}/") for i, t in enumerate(ORDER_TOPICS)]
    assert webhook_problems(hooks) == []


def test_paused_disabled_and_missing_topics_each_get_a_sentence():
    hooks = [hook("1", "order.created", "paused"), hook("2", "order.updated", "disabled"),
             hook("3", "order.updated"), hook("4", "order.restored")]
    problems = webhook_problems(hooks)
    assert len(problems) == 3
    assert problems[0].startswith("webhook #1 (order.created to https://connector.example/webhooks/woocommerce) "
                                  "does not deliver: it is paused")
    assert "WooCommerce disabled it after deliveries failed" in problems[1] and problems[1].startswith("webhook #2")
    assert problems[2].startswith("no webhook sends order.deleted to this service")


def test_the_path_checked_is_the_apps_woocommerce_route(app):
    assert WEBHOOK_PATH in {rule.rule for rule in app.url_map.iter_rules()}
