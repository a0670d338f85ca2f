from django.urls import path

from .screens import accounts, audit, bulk, integrations, inventory, rules, workflows

app_name = "integrations"

urlpatterns = [
    path("", integrations.home, name="home"),
    path("catalogue/<slug:slug>/icon", integrations.application_icon, name="application-icon"),
    # integrations
    path("integrations/", integrations.integration_list, name="list"),
    path("integrations/add/", integrations.integration_add, name="add"),
    path("integrations/add/<slug:slug>/", integrations.integration_add_form, name="add-form"),
    path("integrations/<int:pk>/", integrations.integration_detail, name="detail"),
    path("integrations/<int:pk>/settings", integrations.integration_settings, name="settings"),
    path("integrations/<int:pk>/workflow", integrations.integration_workflow, name="workflow"),
    path("integrations/<int:pk>/connection", integrations.integration_connection, name="connection"),
    path("integrations/<int:pk>/test", integrations.integration_test, name="test"),
    path("integrations/<int:pk>/maintainers", integrations.maintainer_add, name="maintainer-add"),
    path("integrations/<int:pk>/sync", integrations.integration_sync, name="sync"),
    path("integrations/<int:pk>/sync/status", integrations.integration_sync_status, name="sync-status"),
    path("integrations/<int:pk>/sync/cancel", integrations.integration_sync_cancel, name="sync-cancel"),
    path("integrations/<int:pk>/delete", integrations.integration_delete, name="delete"),
    path("maintainers/<int:pk>/remove", integrations.maintainer_remove, name="maintainer-remove"),
    path("prerequisites/<str:kind>/<int:pk>/add", integrations.prerequisite_create, name="prerequisite-add"),
    path("prerequisites/<int:pk>/remove", integrations.prerequisite_delete, name="prerequisite-remove"),
    # resources and roles
    path("resources/", inventory.resource_list, name="resources"),
    path("resources/<int:pk>/", inventory.resource_detail, name="resource"),
    path("resources/<int:pk>/roles", inventory.resource_roles, name="resource-roles"),
    path("resources/<int:pk>/settings", inventory.resource_settings, name="resource-settings"),
    path("resources/<int:pk>/workflow", inventory.resource_workflow, name="resource-workflow"),
    path("resources/<int:pk>/maintainers", inventory.resource_maintainer_add, name="resource-maintainer-add"),
    path("roles/", inventory.role_list, name="roles"),
    path("roles/options", inventory.role_options, name="role-options"),
    path("roles/<int:pk>/", inventory.role_detail, name="role"),
    path("roles/<int:pk>/settings", inventory.role_settings, name="role-settings"),
    path("roles/<int:pk>/workflow", inventory.role_workflow, name="role-workflow"),
    # accounts
    path("accounts/", accounts.account_list, name="accounts"),
    path("accounts/<int:pk>/", accounts.account_detail, name="account"),
    path("accounts/<int:pk>/link", accounts.account_link_view, name="account-link"),
    path("accounts/<int:pk>/service-account", accounts.account_service_view, name="account-service"),
    # rules
    path("rules/", rules.rule_list, name="rules"),
    path("rules/add/", rules.rule_create, name="rule-add"),
    path("rules/<int:pk>/", rules.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/toggle", rules.rule_toggle, name="rule-toggle"),
    path("rules/<int:pk>/delete", rules.rule_delete, name="rule-delete"),
    path("rules/<int:pk>/preview", rules.rule_preview, name="rule-preview"),
    path("rules/<int:pk>/apply", rules.rule_apply, name="rule-apply"),
    # bulk actions and jobs
    path("bulk/", bulk.bulk, name="bulk"),
    path("bulk/preview", bulk.bulk_preview, name="bulk-preview"),
    path("bulk/apply", bulk.bulk_apply_view, name="bulk-apply"),
    path("jobs/<uuid:pk>/", bulk.job_detail, name="job"),
    # audit log
    path("audit/", audit.audit_log, name="audit"),
    path("audit/export.csv", audit.audit_csv, name="audit-csv"),
]

urlpatterns += [
    # approval workflows
    path("workflows/", workflows.workflow_list, name="workflows"),
    path("workflows/add/", workflows.workflow_create, name="workflow-add"),
    path("workflows/<int:pk>/", workflows.workflow_edit, name="workflow-edit"),
    path("workflows/<int:pk>/delete", workflows.workflow_delete, name="workflow-delete"),
]
