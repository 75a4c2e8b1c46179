"""What pages the operator: the alarm topic, the alarms, the EventBridge rules and the dashboard."""
