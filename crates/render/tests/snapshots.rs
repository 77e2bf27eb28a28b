//! One snapshot per built-in component type and trait: the exact objects
//! each renders. Review changes with `cargo insta review` (or set
//! INSTA_UPDATE=always) and commit the `.snap` files.

use heimdall_model::{decode, parse_documents};
use heimdall_render::{Platform, RenderOptions, render};
use serde_json::Value;

fn render_objects(components: &str) -> Value {
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: demo, namespace: shop}}\nspec:\n  components:\n{components}"
    );
    let document = parse_documents(&yaml, "snapshot.yaml").unwrap_or_else(|e| panic!("{e}")).remove(0);
    let app = decode(&document.value, "snapshot.yaml", "default").unwrap_or_else(|e| panic!("{e}")).resource;
    let rendered = render(&app, "snapshot.yaml", &Platform::builtin(), &RenderOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rendered.targets.len(), 1);
    let target = &rendered.targets[0];
    serde_json::json!({"objects": target.objects, "references": target.references})
}

/// A webservice with `trait_yaml` attached, for the trait snapshots.
fn with_trait(trait_yaml: &str) -> Value {
    let indented: String = trait_yaml.lines().map(|l| format!("        {l}\n")).collect();
    render_objects(&format!(
        "    - name: web\n      type: webservice\n      properties:\n        image: nginx:1.27\n        ports: [{{port: 80, expose: true}}]\n      traits:\n{indented}"
    ))
}

macro_rules! component_snapshots {
    ($($name:ident => $yaml:expr),* $(,)?) => {
        $(#[test]
        fn $name() {
            insta::assert_yaml_snapshot!(concat!("component_", stringify!($name)), render_objects($yaml));
        })*
    };
}

macro_rules! trait_snapshots {
    ($($name:ident => $yaml:expr),* $(,)?) => {
        $(#[test]
        fn $name() {
            insta::assert_yaml_snapshot!(concat!("trait_", stringify!($name)), with_trait($yaml));
        })*
    };
}

component_snapshots! {
    webservice => "    - name: web\n      type: webservice\n      properties:\n        image: nginx:1.27\n        imagePullPolicy: Always\n        cmd: [nginx]\n        args: [-g, daemon off;]\n        cpu: \"0.5\"\n        memory: 1024Mi\n        limit: {cpu: 1}\n        env:\n          - {name: MODE, value: prod}\n          - name: PASSWORD\n            valueFrom: {secretKeyRef: {name: db, key: password}}\n        labels: {tier: web}\n        annotations: {team: shop}\n        exposeType: NodePort\n        ports:\n          - {port: 80, expose: true, nodePort: 30080}\n          - {port: 9090, name: metrics}\n        readinessProbe: {httpGet: {path: /ready, port: 80}}\n        volumeMounts:\n          configMap: [{name: conf, mountPath: /etc/nginx/conf.d, cmName: nginx-conf}]\n          emptyDir: [{name: cache, mountPath: /cache}]\n",
    worker => "    - name: consumer\n      type: worker\n      properties:\n        image: registry.example.com/consumer:2\n        cmd: [consume, --queue, orders]\n",
    daemon => "    - name: agent\n      type: daemon\n      properties:\n        image: prom/node-exporter:v1.8.0\n        ports: [{port: 9100, expose: true}]\n        volumeMounts:\n          hostPath: [{name: sys, mountPath: /host/sys, path: /sys, readOnly: true}]\n",
    statefulset => "    - name: db\n      type: statefulset\n      properties:\n        image: postgres:16\n        ports: [{port: 5432, expose: true}]\n        env: [{name: PGDATA, value: /data}]\n",
    task => "    - name: migrate\n      type: task\n      properties:\n        image: registry.example.com/migrate:1\n        count: 2\n        restart: OnFailure\n        backoffLimit: 3\n",
    cron_task => "    - name: report\n      type: cron-task\n      properties:\n        image: registry.example.com/report:1\n        schedule: \"0 3 * * *\"\n        timeZone: Europe/Dublin\n        concurrencyPolicy: Forbid\n        ttlSecondsAfterFinished: 600\n",
    k8s_objects => "    - name: extra\n      type: k8s-objects\n      properties:\n        objects:\n          - {apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {mode: fast}}\n          - {apiVersion: v1, kind: Namespace, metadata: {name: extra-ns}}\n",
    ref_objects => "    - name: existing\n      type: ref-objects\n      properties:\n        objects:\n          - {resource: deployments, name: legacy}\n          - {kind: Service, labelSelector: {app: legacy}}\n",
}

trait_snapshots! {
    scaler => "- type: scaler\n  properties: {replicas: 3}\n",
    gateway => "- type: gateway\n  properties: {domain: shop.example.com, http: {\"/\": 80, \"/api\": 8080}, secretName: shop-tls}\n",
    pure_ingress => "- type: pure-ingress\n  properties: {domain: shop.example.com, http: {\"/\": 80}}\n",
    expose => "- type: expose\n  properties: {ports: [{port: 443, targetPort: 8443, name: https}], type: LoadBalancer, annotations: {lb: internal}}\n",
    labels => "- type: labels\n  properties: {team: shop, tier: web}\n",
    annotations => "- type: annotations\n  properties: {prometheus.io/scrape: true}\n",
    env => "- type: env\n  properties: {env: {ZED: z, ALPHA: a}}\n",
    storage => "- type: storage\n  properties:\n    pvc: [{name: data, mountPath: /data, resources: {requests: {storage: 2Gi}}}]\n    configMap: [{name: settings, mountPath: /etc/settings, data: {a: b}}]\n    secret: [{name: creds, mountToEnv: {envName: TOKEN, secretKey: token}, mountOnly: true}]\n    emptyDir: [{name: tmp, mountPath: /tmp, medium: Memory}]\n",
    sidecar => "- type: sidecar\n  properties: {name: logs, image: busybox:1.36, cmd: [tail, -f, /var/log/app.log], volumes: [{name: applogs, path: /var/log}]}\n",
    init_container => "- type: init-container\n  properties: {name: setup, image: busybox:1.36, cmd: [sh, -c, \"echo hi > /init/x\"], appMountPath: /app, initMountPath: /init}\n",
    hpa => "- type: hpa\n  properties: {min: 2, max: 6, cpu: {type: Utilization, value: 70}, mem: {type: AverageValue, value: 500}}\n",
    cpuscaler => "- type: cpuscaler\n  properties: {min: 1, max: 4, cpuUtil: 60}\n",
    resource => "- type: resource\n  properties: {requests: {cpu: 0.25, memory: 256Mi}, limits: {cpu: 1, memory: 1Gi}}\n",
    service_account => "- type: service-account\n  properties: {name: web-sa, create: true, privileges: [{verbs: [get, list], apiGroups: [\"\"], resources: [configmaps]}]}\n",
    affinity => "- type: affinity\n  properties:\n    podAntiAffinity:\n      preferred: [{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchExpressions: [{key: app, values: [web]}]}}}]\n    tolerations: [{key: dedicated, operator: Equal, value: web, effect: NoSchedule}]\n",
    topologyspreadconstraints => "- type: topologyspreadconstraints\n  properties:\n    constraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}]\n",
    securitycontext => "- type: securitycontext\n  properties: {runAsUser: 1000, readOnlyRootFilesystem: true, dropCapabilities: [ALL], addCapabilities: [NET_BIND_SERVICE]}\n",
    podsecuritycontext => "- type: podsecuritycontext\n  properties: {runAsUser: 65532, fsGroup: 65532}\n",
    command => "- type: command\n  properties: {command: [/bin/server], args: [--port, \"80\"], addArgs: [--verbose]}\n",
    container_image => "- type: container-image\n  properties: {image: nginx:1.28, imagePullPolicy: Always}\n",
    startup_probe => "- type: startup-probe\n  properties: {httpGet: {path: /started, port: 80}, failureThreshold: 30, periodSeconds: 2}\n",
    k8s_update_strategy => "- type: k8s-update-strategy\n  properties: {targetKind: Deployment, strategy: {type: RollingUpdate, rollingStrategy: {maxSurge: 1, maxUnavailable: 0}}}\n",
    json_patch => "- type: json-patch\n  properties: {operations: [{op: add, path: /spec/minReadySeconds, value: 10}]}\n",
    json_merge_patch => "- type: json-merge-patch\n  properties: {spec: {revisionHistoryLimit: 3}}\n",
    service_binding => "- type: service-binding\n  properties: {envMappings: {DB_URL: {secret: db, key: url}, LOG_LEVEL: {configmap: settings}}}\n",
    hostalias => "- type: hostalias\n  properties: {hostAliases: [{ip: 10.0.0.10, hostnames: [db.internal]}]}\n",
}
